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
import time
from pathlib import Path

log = logging.getLogger("endpoints.keeper")

RESTART_CHECK_S = 0.5
MAX_RESTART_DELAY_S = 30.0
STABLE_S = 60.0


def folder(data_dir: Path, endpoint: str) -> Path:
    path = Path(data_dir) / "endpoints" / endpoint
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


def log_path(data_dir: Path, endpoint: str, deployment: str) -> Path:
    return folder(data_dir, endpoint) / f"{deployment}.log"


def port_taken(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port (where a router would bind)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class HostKeeper:
    def __init__(self, data_dir: Path, collector_url: str, admin_key: str, address: str = "127.0.0.1"):
        self.data_dir = Path(data_dir)
        self.address = address
        """Where the hosts' routers listen (the endpoint_host setting)."""
        self.collector_url = collector_url
        self.admin_key = admin_key
        self.hosts: dict[str, subprocess.Popen] = {}
        self.delays: dict[str, float] = {}
        """Seconds before the next restart of a host that keeps exiting (doubling; back to the
        least once a host ran for STABLE_S)."""
        self.started: dict[str, float] = {}
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
            self.started[name] = time.monotonic()
            env = {**os.environ, "INSIGHTS_URL": self.collector_url, "INSIGHTS_API_KEY": self.admin_key}
            with open(folder(self.data_dir, name) / "host.log", "ab") as output:
                self.hosts[name] = subprocess.Popen(
                    [sys.executable, "-m", "endpoints", "host", name, "--data-dir", str(self.data_dir),
                     "--address", self.address],
                    env=env, stdout=output, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)

    def stop(self, name: str, timeout: float = 40.0) -> None:
        with self.lock:
            process = self.hosts.pop(name, None)
            self.delays.pop(name, None)
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
        due: dict[str, float] = {}
        while not self.stopping.wait(RESTART_CHECK_S):
            with self.lock:
                dead = {name: process.returncode for name, process in self.hosts.items() if process.poll() is not None}
            now = time.monotonic()
            for name, code in dead.items():
                if name not in due:
                    stable = now - self.started.get(name, now) > STABLE_S
                    delay = RESTART_CHECK_S if stable else self.delays.get(name, RESTART_CHECK_S)
                    self.delays[name] = min(delay * 2, MAX_RESTART_DELAY_S)
                    due[name] = now + delay
                    log.warning("the host of endpoint %s exited (%s); starting it again in %.1f s", name, code, delay)
                elif now >= due[name] and not self.stopping.is_set():
                    del due[name]
                    self.start(name)


def _terminate(process: subprocess.Popen, timeout: float) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
