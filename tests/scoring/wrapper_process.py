"""The wrapper as a real process for the scoring tests (`python -m scoring score`, what
`insights score` runs) hosting one of the scripts in scripts/."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
from collector_process import NO_PHONE_HOME, free_port

SCRIPTS = Path(__file__).parent / "scripts"


class Wrapper:
    def __init__(self, script: str, service: dict, spool_dir: Path, env: dict | None = None, args: list | None = None):
        self.script = str(SCRIPTS / script)
        self.service = service
        self.spool_dir = Path(spool_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = env or {}
        self.args = args or []
        self.process: subprocess.Popen | None = None
        self.log_path = self.spool_dir.parent / f"wrapper-{self.port}.log"

    def start(self, wait_ready: bool = True, timeout: float = 30.0) -> Wrapper:
        env = {**os.environ, **NO_PHONE_HOME, "APPLICATIONINSIGHTS_CONNECTION_STRING": self.service["connection_string"],
               **self.env}
        command = [sys.executable, "-m", "scoring", "score", "--entry_script", self.script, "--port", str(self.port),
                   "--host", "127.0.0.1", "--service", self.service["name"], "--spool_dir", str(self.spool_dir), *self.args]
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        if wait_ready:
            _wait_until(lambda: _status(f"{self.url}/ready") == 200, timeout, self.process, self.log_path)
        return self

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout)
        self.log.close()
        return code

    def wait(self, timeout: float = 30.0) -> int:
        code = self.process.wait(timeout=timeout)
        self.log.close()
        return code

    def metrics(self) -> dict:
        return httpx.get(f"{self.url}/metrics", timeout=5).json()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")


def _status(url: str) -> int | None:
    try:
        return httpx.get(url, timeout=1).status_code
    except httpx.TransportError:
        return None


def _wait_until(ready, timeout: float, process: subprocess.Popen, log_path: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode}: {log_path.read_text()[-3000:]}")
        if ready():
            return
        time.sleep(0.05)
    raise RuntimeError(f"not ready after {timeout} s: {log_path.read_text()[-3000:]}")
