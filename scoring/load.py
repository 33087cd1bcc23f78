"""What a worker tells its supervisor about itself: whether init() finished, and how busy it is.

A worker samples its count of requests in progress (admitted and not yet answered, queued for a
run() thread included) every SAMPLE_S and writes, every WRITE_S, `{"ready", "busy_s", "time"}` to
`<status dir>/<pid>.json` (written whole, then renamed). `busy_s` is that count integrated over time:
between two readings, Δbusy_s / Δtime is the average number of requests in progress, and divided
by max_concurrent_requests it is the worker's utilization (above 1 when requests queue). The
supervisor's autoscaler reads these files (autoscale.py) and waits for a new worker's `ready`
(pool.py). Sampling keeps the request path untouched: nothing here runs per request.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

STATUS_DIR_VAR = "INSIGHTS_WORKER_STATUS_DIR"
INIT_FIRST_VAR = "INSIGHTS_INIT_BEFORE_SERVING"
"""Set for a worker added to running ones (a reload, a scale-up): it runs init() before it accepts
a connection, so that it never answers 503 'starting' in place of a ready worker."""
SAMPLE_S = 0.02
WRITE_S = 0.25


def status_path(directory: str | Path, pid: int) -> Path:
    return Path(directory) / f"{pid}.json"


def read_status(directory: str | Path, pid: int) -> dict | None:
    try:
        return json.loads(status_path(directory, pid).read_text())
    except (OSError, ValueError):
        return None


class LoadReporter:
    """Samples `app.pending` and `app.ready` (scoring.app.ScoringApp) in a daemon thread."""

    def __init__(self, app, directory: str | Path, sample: bool = True):
        self.app = app
        self.path = status_path(directory, os.getpid())
        self.busy_s = 0.0
        self.sample = sample
        """False without autoscale: then only readiness is reported, once, and nothing samples."""

    def start(self) -> LoadReporter:
        self.write()
        threading.Thread(target=self._run if self.sample else self._ready_once, name="load-reporter", daemon=True).start()
        return self

    def _ready_once(self) -> None:
        while not self.app.ready:
            time.sleep(WRITE_S / 2)
        self.write()

    def _run(self) -> None:
        last = time.monotonic()
        next_write = last + WRITE_S
        while True:
            time.sleep(SAMPLE_S)
            now = time.monotonic()
            self.busy_s += self.app.pending * (now - last)
            last = now
            if now >= next_write:
                next_write = now + WRITE_S
                self.write()

    def write(self) -> None:
        temporary = self.path.with_suffix(".tmp")
        try:
            temporary.write_text(json.dumps({"ready": bool(self.app.ready), "busy_s": self.busy_s,
                                             "time": time.monotonic()}))
            os.replace(temporary, self.path)
        except OSError:
            pass  # the supervisor went away with its folder; the worker is being stopped
