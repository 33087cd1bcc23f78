"""Scheduled monitor runs: each enabled monitor runs once per window, over the last complete one
(windows are aligned to multiples of their length since the epoch, so a 1-hour monitor covers
10:00-11:00, then 11:00-12:00). A window is marked done once it ran, or could not (no data, no
reference: logged), so a restart neither repeats nor skips one; after a long stop only the latest
window runs, not every one missed.

On a store N collectors share (ClickHouse), `held` says whether this collector holds the
`model-monitors` lease (monitoring/extension.py): only the holder runs windows, and it checks the
lease again before each monitor, so a window runs once among N collectors. A holder that loses the
lease in the middle of one monitor's run (a pause longer than the lease) may leave that one window
to run again on its successor: its result rows then appear twice, under two `runId`s.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from collector.store.monitors import MonitorState
from monitoring.definition import MonitorSpec
from monitoring.run import MonitorError, run_monitor

log = logging.getLogger(__name__)


def due_window_end(now: datetime, window_seconds: int) -> datetime:
    epoch = datetime(1970, 1, 1)
    elapsed = int((now - epoch).total_seconds())
    return epoch + timedelta(seconds=elapsed - elapsed % window_seconds)


class MonitorScheduler:
    def __init__(self, state: MonitorState, tick_seconds: float = 30.0, held: Callable[[], bool] | None = None):
        self.state = state
        self.tick_seconds = tick_seconds
        self.held = held or (lambda: True)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="model-monitors", daemon=True)

    def start(self) -> MonitorScheduler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.wait(self.tick_seconds):
            try:
                self.run_due(datetime.now(UTC).replace(tzinfo=None))
            except Exception:  # a store hiccup must not end the schedule
                log.exception("scheduled monitor runs failed; trying again next tick")

    def run_due(self, now: datetime) -> int:
        """Run every monitor whose latest complete window has not run yet; how many ran."""
        ran = 0
        for monitor in self.state.monitors():
            spec = MonitorSpec.model_validate({k: v for k, v in monitor.items() if k in MonitorSpec.model_fields})
            end = due_window_end(now, spec.window_seconds)
            if not spec.enabled or (monitor["last_window_end"] is not None and monitor["last_window_end"] >= end):
                continue
            if self._stop.is_set() or not self.held():
                break
            try:
                run_monitor(self.state, monitor["service"], monitor["name"], spec, end)
                ran += 1
            except MonitorError as error:
                log.warning("monitor %s/%s, window ending %s: %s", monitor["service"], monitor["name"], end, error)
            self.state.mark_window(monitor["service"], monitor["name"], end).result()
        return ran
