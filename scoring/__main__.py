"""`python -m scoring score ...` / `python -m scoring logs ...`: the same commands `insights` registers."""

import typer

from scoring.cli import logs_command, score_command

app = typer.Typer(no_args_is_help=True, add_completion=False)
app.command("score")(score_command)
app.command("logs")(logs_command)

if __name__ == "__main__":
    app()
