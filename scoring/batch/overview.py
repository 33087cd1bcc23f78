"""Where a job stands: its counters, `job_progress_overview.txt`, and the progress bar on the terminal.

One set of counters feeds all three views (and the customMetrics the collector gets), so the file,
the bar and `insights batch status` never disagree. A mini-batch is *processed* once it is settled:
succeeded, or failed after its last retry; *failed* counts the latter.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from scoring.batch.layout import stamp
from scoring.batch.settings import JobSettings

RUNNING, SUCCEEDED, FAILED, CANCELED = "Running", "Succeeded", "Failed", "Canceled"

WHERE_TO_LOOK = ("logs/user/error.txt (a summary of the script's errors), logs/user/error/ (their stack traces), "
                 "logs/user/stdout/ (the script's prints and logging), logs/sys/master_role.txt (scheduling)")


@dataclass
class Counts:
    created: int
    files: int
    processed: int = 0
    failed: int = 0
    items_succeeded: int = 0
    items_failed: int = 0
    retries: int = 0

    def metrics(self) -> dict[str, int]:
        """The customMetrics a job reports (names are what `insights batch status` reads)."""
        return {"mini_batches_created": self.created, "mini_batches_processed": self.processed,
                "mini_batches_failed": self.failed, "items_succeeded": self.items_succeeded,
                "items_failed": self.items_failed, "retries": self.retries}


def overview_text(settings: JobSettings, counts: Counts, status: str, result: str, started: float) -> str:
    threshold = "never fails the job" if settings.error_threshold < 0 else f"the job fails above {settings.error_threshold}"
    lines = [
        f"Job: {settings.job}",
        f"Status: {status}",
        f"Started: {stamp(started)} UTC",
        f"Updated: {stamp(time.time())} UTC",
        f"Entry script: {settings.entry_script}",
        f"Input: {settings.input} ({counts.files} files)",
        f"Output: {settings.output_file}",
        "",
        f"Mini-batches created: {counts.created}",
        f"Mini-batches processed: {counts.processed}",
        f"Mini-batches succeeded: {counts.processed - counts.failed}",
        f"Mini-batches failed: {counts.failed}",
        f"Mini-batch retries: {counts.retries}",
        f"Items succeeded: {counts.items_succeeded}",
        f"Items failed: {counts.items_failed} (error threshold {settings.error_threshold}: {threshold})",
        "",
        f"Result: {result or 'the job is running'}",
    ]
    if status == FAILED or counts.failed or counts.items_failed:
        lines.append(f"Where to look: {WHERE_TO_LOOK}")
    return "\n".join(lines) + "\n"


class ProgressBar:
    """Mini-batches processed of created, and how many failed, on stderr."""

    def __init__(self, counts: Counts, enabled: bool = True):
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]mini-batches"), BarColumn(), MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"), TextColumn("{task.fields[retries]} retried"),
            TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True), transient=False,
        )
        self._task = self._progress.add_task("job", total=counts.created, failed=0, retries=0)

    def __enter__(self) -> ProgressBar:
        if self.enabled:
            self._progress.start()
        return self

    def update(self, counts: Counts) -> None:
        if self.enabled:
            self._progress.update(self._task, completed=counts.processed, failed=counts.failed, retries=counts.retries)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self._progress.stop()
