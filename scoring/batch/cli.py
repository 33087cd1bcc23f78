"""`insights batch run` and `insights batch status`, as the typer app `batch_app` that `insights` mounts.

`run` takes the settings of an Azure ML batch deployment under their own names (underscores, as in
the deployment YAML; dashes work too). Exit codes: 0 the job completed, 1 it failed (the message
says why and where to look), 2 the command line was wrong and nothing ran, 130 canceled by Ctrl-C,
143 canceled by SIGTERM (after the mini-batches in flight finished; see orchestrator.py).
"""

from __future__ import annotations

import os
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from scoring.batch import inputs
from scoring.batch.settings import JobSettingsError, build

batch_app = typer.Typer(help="Batch scoring jobs: a score.py over many files, with batch deployments' logs.",
                        no_args_is_help=True, add_completion=False)
err = Console(stderr=True, soft_wrap=True)


@batch_app.command("run")
def run_command(
    entry_script: str = typer.Option(..., "--entry_script", "--entry-script", help="The score.py: init() and run(mini_batch)."),
    input: str = typer.Option(..., "--input", help="A folder (every file under it) or one file."),
    output: str = typer.Option(..., "--output", help="Folder for the output file and logs/; must not hold a previous job's."),
    service: Optional[str] = typer.Option(None, "--service", help="Collector service to send telemetry to."),
    mini_batch_size: int = typer.Option(10, "--mini_batch_size", "--mini-batch-size", min=1, help="Files per run() call."),
    workers: int = typer.Option(os.cpu_count() or 1, "--workers", min=1, help="Worker processes (init() once in each)."),
    max_retries: int = typer.Option(3, "--max_retries", "--max-retries", min=0, help="Retries of a mini-batch that raises or times out."),
    timeout: float = typer.Option(30.0, "--timeout", min=0.001, help="Seconds a run() call may take on one mini-batch."),
    init_timeout: float = typer.Option(600.0, "--init_timeout", "--init-timeout", min=0.001, help="Seconds a worker may take to load score.py and run init(); past it the job fails."),
    error_threshold: int = typer.Option(-1, "--error_threshold", "--error-threshold", min=-1, help="Failed items the job tolerates; -1: any number."),
    output_file_name: str = typer.Option("predictions.csv", "--output_file_name", "--output-file-name", help="The file run()'s rows are appended to (with one row per file, each led by its file's key unless it names it)."),
    logging_level: str = typer.Option("INFO", "--logging_level", "--logging-level", help="The script's logging level (and the master log's)."),
    resource_monitor_interval: float = typer.Option(600, "--resource_monitor_interval", "--resource-monitor-interval", min=0, help="Seconds between resource samples; 0 turns them off."),
    job_name: Optional[str] = typer.Option(None, "--job_name", "--job-name", help="Name to find the job by (default: <script>-<time>-<hex>)."),
    progress: bool = typer.Option(True, "--progress/--no-progress", help="Show the progress bar."),
) -> None:
    """Run score.py over the input's files in mini-batches, as a batch deployment does."""
    from scoring.batch.orchestrator import Orchestrator

    try:
        settings = build(entry_script=entry_script, input=input, output=output, service=service, job=job_name,
                         mini_batch_size=mini_batch_size, workers=workers, max_retries=max_retries, timeout=timeout,
                         init_timeout=init_timeout,
                         error_threshold=error_threshold, output_file_name=output_file_name,
                         logging_level=logging_level, resource_monitor_interval=resource_monitor_interval)
        root, files = inputs.list_files(settings.input)
    except JobSettingsError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(2) from None
    batches = inputs.mini_batches(root, files, settings.mini_batch_size)
    err.print(f"job [bold]{settings.job}[/bold]: {len(files)} files in {len(batches)} mini-batches, "
              f"{min(settings.workers, len(batches))} worker(s); logs in {settings.output}/logs"
              + (f"; telemetry to service {settings.service_name}" if settings.sends_telemetry else ""), highlight=False)
    result = Orchestrator(settings, batches, len(files), show_progress=progress).run()
    colour = "green" if result.exit_code == 0 else "red"
    err.print(f"[{colour}]job {settings.job} {result.status.lower()}[/{colour}]: {result.message}", highlight=False)
    if result.exit_code == 0:
        err.print(f"output: {settings.output_file}", highlight=False)
    else:
        err.print(f"see {settings.output}/logs/job_progress_overview.txt", highlight=False)
    raise typer.Exit(result.exit_code)


@batch_app.command("status")
def status_command(
    job: str = typer.Argument(..., help="The job's name (printed when it started; customDimensions.job)."),
    service: Optional[str] = typer.Option(None, "--service", help="Only this service's rows (the admin key sees all)."),
) -> None:
    """A job's progress, failures and errors, as the collector received them."""
    from collector.client import InsightsError, Workspace
    from scoring.batch import status

    try:
        found = status.read(Workspace(), job, service)
    except InsightsError as error:
        err.print(f"[red]error:[/red] {error}", highlight=False)
        raise typer.Exit(1) from None
    if not found.found:
        err.print(f"[red]error:[/red] the collector has no telemetry for job {job!r} (was it run with --service?)",
                  highlight=False)
        raise typer.Exit(1)
    _print_status(found)


def _print_status(found) -> None:
    console = Console()
    counters = found.counters
    table = Table(show_header=False, box=None, title=f"job {found.job}", title_justify="left")
    table.add_row("[bold]status[/bold]", found.status)
    created, processed = counters.get("mini_batches_created", 0), counters.get("mini_batches_processed", 0)
    table.add_row("[bold]mini-batches[/bold]", f"{processed} of {created} processed, {counters.get('mini_batches_failed', 0)} failed, "
                                              f"{counters.get('retries', 0)} retried")
    table.add_row("[bold]items[/bold]", f"{counters.get('items_succeeded', 0)} succeeded, {counters.get('items_failed', 0)} failed")
    attempts = found.attempts
    if attempts.get("attempts"):
        table.add_row("[bold]run(mini_batch)[/bold]", f"{attempts['attempts']} attempts, {attempts['failed_attempts']} failed, "
                                                     f"avg {attempts['avg_ms']:.1f} ms, p95 {attempts['p95_ms']:.1f} ms")
    if found.result:
        table.add_row("[bold]result[/bold]", found.result)
    if found.output:
        table.add_row("[bold]output[/bold]", found.output)
    table.add_row("[bold]updated[/bold]", found.updated or "")
    console.print(table)
    if found.errors:
        errors = Table("count", "type", "message", title="errors", title_justify="left")
        for error in found.errors:
            errors.add_row(str(error["errors"]), str(error["type"]), str(error["message"])[:200])
        console.print(errors)
