"""Where endpoints run: one endpoint host process (`python -m endpoints host NAME`, host.py) per
endpoint, started by the collector's endpoints extension when the endpoint is created and again
whenever the collector starts, restarted within a second if it dies, stopped when the endpoint is
deleted or the collector stops. The host runs the router and the deployments' `insights score`
processes; it learns the endpoint's definition from the collector's API and reports back there.

Files live in the data dir under `endpoints/<name>/`: the host's log (`host.log`), each
deployment's console output (`<deployment>.log`, what `get-logs` reads) and its spool.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger("endpoints.keeper")

RESTART_CHECK_S = 0.5


def folder(data_dir: Path, endpoint: str) -> Path:
    path = Path(data_dir) / "endpoints" / endpoint
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path(data_dir: Path, endpoint: str, deployment: str) -> Path:
    return folder(data_dir, endpoint) / f"{deployment}.log"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HostKeeper:
    def __init__(self, data_dir: Path, collector_url: str, admin_key: str):
        self.data_dir = Path(data_dir)
        self.collector_url = collector_url
        self.admin_key = admin_key
        self.hosts: dict[str, subprocess.Popen] = {}
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="endpoint-hosts", daemon=True)

    def begin(self, names: list[str]) -> None:
        for name in names:
            self.start(name)
        self.thread.start()

    def start(self, name: str) -> None:
        with self.lock:
            running = self.hosts.get(name)
            if running is not None and running.poll() is None:
                return
            env = {**os.environ, "INSIGHTS_URL": self.collector_url, "INSIGHTS_API_KEY": self.admin_key}
            with open(folder(self.data_dir, name) / "host.log", "ab") as output:
                self.hosts[name] = subprocess.Popen(
                    [sys.executable, "-m", "endpoints", "host", name, "--data-dir", str(self.data_dir)],
                    env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self, name: str, timeout: float = 40.0) -> None:
        with self.lock:
            process = self.hosts.pop(name, None)
        if process is not None:
            _terminate(process, timeout)

    def stop_all(self) -> None:
        self.stopping.set()
        with self.lock:
            processes, self.hosts = list(self.hosts.values()), {}
        for process in processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in processes:
            _terminate(process, 40.0)

    def _watch(self) -> None:
        while not self.stopping.wait(RESTART_CHECK_S):
            with self.lock:
                dead = [name for name, process in self.hosts.items() if process.poll() is not None]
            for name in dead:
                if self.stopping.is_set():
                    return
                log.warning("the host of endpoint %s exited (%s); starting it again", name, self.hosts[name].returncode)
                self.start(name)


def _terminate(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
