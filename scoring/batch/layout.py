"""The log layout batch deployment users know, under `<output>/logs/`:

    job_progress_overview.txt            mini-batches created / processed / failed, the result
    sys/master_role.txt                  the orchestrator's view: scheduling, progress, result
    sys/node/<node>/processNNN.txt       one line per mini-batch attempt of that worker process
    user/error.txt                       one line per script error
    user/error/<node>/processNNN.txt     the full stack traces
    user/stdout/<node>/processNNN.stdout.txt   the script's prints and logging (its stdout and stderr)
    perf/<node>/*.csv                    resource usage (monitor.py)

Only the orchestrator writes here, except the stdout files, which are the worker processes' own
stdout and stderr. A worker replaced after a timeout keeps its slot's name, so its files continue.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from pathlib import Path


def process_name(slot: int) -> str:
    return f"process{slot:03d}"


def stamp(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class Layout:
    def __init__(self, output: str, node: str):
        self.logs = Path(output) / "logs"
        self.node = node
        self.overview = self.logs / "job_progress_overview.txt"
        self.master_role = self.logs / "sys" / "master_role.txt"
        self.error_summary = self.logs / "user" / "error.txt"
        self.perf = self.logs / "perf" / node
        self._files: dict[Path, object] = {}
        self._master_handler: logging.Handler | None = None

    def create(self) -> None:
        for folder in (self.logs / "sys" / "node" / self.node, self.logs / "user" / "stdout" / self.node,
                       self.logs / "user" / "error" / self.node):
            folder.mkdir(parents=True, exist_ok=True)
        self.error_summary.touch()

    def stdout_path(self, slot: int) -> Path:
        return self.logs / "user" / "stdout" / self.node / f"{process_name(slot)}.stdout.txt"

    def node_path(self, slot: int) -> Path:
        return self.logs / "sys" / "node" / self.node / f"{process_name(slot)}.txt"

    def error_path(self, slot: int) -> Path:
        return self.logs / "user" / "error" / self.node / f"{process_name(slot)}.txt"

    def relative(self, path: Path) -> str:
        return f"logs/{path.relative_to(self.logs)}"

    def append(self, path: Path, text: str) -> None:
        """Appends through one open handle per file; flushed by flush() and close()."""
        handle = self._files.get(path)
        if handle is None:
            handle = self._files[path] = open(path, "a", encoding="utf-8")
        handle.write(text)

    def write_overview(self, text: str) -> None:
        temporary = self.overview.with_suffix(".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, self.overview)

    def master_logger(self, level: str) -> logging.Logger:
        """sys/master_role.txt; per-mini-batch scheduling lines are DEBUG, so --logging_level governs them."""
        logger = logging.getLogger(f"scoring.batch.master.{id(self)}")
        logger.propagate = False
        logger.setLevel(level)
        handler = logging.FileHandler(self.master_role, encoding="utf-8")
        handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
        self._master_handler = handler
        return logger

    def flush(self) -> None:
        for handle in self._files.values():
            handle.flush()

    def close(self) -> None:
        for handle in self._files.values():
            handle.close()
        self._files.clear()
        if self._master_handler is not None:
            self._master_handler.close()


class _UtcFormatter(logging.Formatter):
    def formatTime(self, record, datefmt=None):  # noqa: N802 (logging's name)
        return stamp(record.created)
