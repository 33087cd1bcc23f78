"""Resource usage under `logs/perf/<node>/`, sampled every --resource_monitor_interval seconds.

Three CSV files, as batch deployments write them: the node's CPU and memory, each job process's
(the orchestrator and every worker) CPU, memory and threads, and the disk that holds the output.
A sample is also taken at the start and at the end, so even a job shorter than the interval shows
what it used. 0 turns the monitor off.
"""

from __future__ import annotations

import csv
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from scoring.batch.layout import stamp

NODE_COLUMNS = ["timestamp", "cpu_percent", "memory_total_mb", "memory_used_mb", "memory_percent"]
PROCESS_COLUMNS = ["timestamp", "process", "pid", "cpu_percent", "memory_rss_mb", "num_threads"]
DISK_COLUMNS = ["timestamp", "path", "total_gb", "used_gb", "free_gb", "percent"]
_MB = 2**20


class ResourceMonitor:
    def __init__(self, folder: Path, interval: float, processes: Callable[[], dict[str, int]], disk_path: str):
        self.folder = folder
        self.interval = interval
        self.processes = processes
        self.disk_path = disk_path
        self._known: dict[int, psutil.Process] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="resource-monitor", daemon=True)

    def start(self) -> ResourceMonitor:
        if self.interval <= 0:
            return self
        self.folder.mkdir(parents=True, exist_ok=True)
        psutil.cpu_percent(None)  # the first reading only sets the baseline
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._stop.set()
            self._thread.join(timeout=5)
            self.sample()

    def _run(self) -> None:
        self.sample()
        while not self._stop.wait(self.interval):
            self.sample()

    def sample(self) -> None:
        now = stamp(time.time())
        memory = psutil.virtual_memory()
        _append(self.folder / "node_resource_usage.csv", NODE_COLUMNS, [[
            now, psutil.cpu_percent(None), round(memory.total / _MB), round((memory.total - memory.available) / _MB),
            memory.percent]])
        _append(self.folder / "processes_resource_usage.csv", PROCESS_COLUMNS, self._process_rows(now))
        disk = psutil.disk_usage(self.disk_path)
        _append(self.folder / "node_disk_usage.csv", DISK_COLUMNS, [[
            now, self.disk_path, round(disk.total / 2**30, 2), round(disk.used / 2**30, 2), round(disk.free / 2**30, 2),
            disk.percent]])

    def _process_rows(self, now: str) -> list[list]:
        rows = []
        for name, pid in {"orchestrator": os.getpid(), **self.processes()}.items():
            process = self._known.get(pid)
            try:
                if process is None:
                    process = self._known[pid] = psutil.Process(pid)
                with process.oneshot():
                    rows.append([now, name, pid, process.cpu_percent(None), round(process.memory_info().rss / _MB, 1),
                                 process.num_threads()])
            except psutil.Error:  # it ended between listing and reading
                self._known.pop(pid, None)
        return rows


def _append(path: Path, columns: list[str], rows: list[list]) -> None:
    new = not path.exists()
    with open(path, "a", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        if new:
            writer.writerow(columns)
        writer.writerows(rows)
