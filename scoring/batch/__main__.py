"""`python -m scoring.batch run|status ...`: the commands `insights batch` mounts."""

from scoring.batch.cli import batch_app

if __name__ == "__main__":
    batch_app()
