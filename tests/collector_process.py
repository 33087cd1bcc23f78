"""A real collector process on 127.0.0.1 with its own data dir, for tests and benchmarks; and the
helpers every test collector offers (in_process.py has the other one)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

# Every Azure SDK in a test must stay on 127.0.0.1: no statsbeat, no control plane, no SDK stats.
NO_PHONE_HOME = {
    "APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL": "true",
    "APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED": "true",
    "APPLICATIONINSIGHTS_SDKSTATS_DISABLED": "true",
}


def exports_under(root: Path) -> dict:
    """The environment of a test collector whose exports go to pytest's temp folders and to
    Azurite over http://127.0.0.1, which the export policy allows only when told (the data dir and
    https otherwise)."""
    return {"INSIGHTS_EXPORT_ROOTS": str(root), "INSIGHTS_EXPORT_ALLOW_HTTP": "true"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[tuple[int, str]]:
    """(pid, command line) of each child process of `pid`: a collector's ingestion workers, a
    wrapper's scoring workers."""
    listing = subprocess.run(["ps", "-ww", "-o", "pid=,args=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [(int(child), args) for child, _, args in (line.strip().partition(" ") for line in listing.splitlines())]


class CollectorHelpers:
    """What tests do through a collector's HTTP API, over whatever `client()` reaches it by: a socket
    (CollectorProcess) or the app itself (in_process.InProcessCollector)."""

    url: str
    admin_key: str
    _http: httpx.Client | None = None

    def client(self, headers: dict | None = None) -> httpx.Client:
        raise NotImplementedError

    @property
    def http(self) -> httpx.Client:
        """One client without a key, kept for the collector's life: for requests a test builds itself."""
        if self._http is None:
            self._http = self.client()
        return self._http

    @property
    def admin(self) -> httpx.Client:
        return self.client({"x-api-key": self.admin_key})

    def create_service(self, prefix: str = "svc", enable_app_insights: bool = True) -> dict:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"[:32]
        with self.admin as client:
            response = client.post("/api/services", json={"name": name, "enable_app_insights": enable_app_insights})
        response.raise_for_status()
        return response.json()

    def connection_string(self, service: dict) -> str:
        return service["connection_string"]

    def import_rows(self, service: str, lines: list[bytes]) -> dict:
        with self.admin as client:
            response = client.post(f"/api/services/{service}/import", content=b"\n".join(lines))
        response.raise_for_status()
        return response.json()

    def query(self, kql: str, service: str | None = None) -> list[dict]:
        """Rows of a KQL query as dicts (through the public query API)."""
        body = {"query": kql, **({"service": service} if service else {})}
        with self.admin as client:
            response = client.post("/v1/apps/default/query", json=body)
        response.raise_for_status()
        table = response.json()["tables"][0]
        names = [c["name"] for c in table["columns"]]
        return [dict(zip(names, row)) for row in table["rows"]]

    def _close_http(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


class CollectorProcess(CollectorHelpers):
    def __init__(self, data_dir: Path, port: int | None = None, admin_key: str = "test-admin-key", env: dict | None = None):
        self.extra_env = env or {}
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.admin_key = admin_key
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.log_path = self.data_dir.parent / f"collector-{self.port}.log"

    def start(self, timeout: float = 120.0) -> CollectorProcess:
        env = {**os.environ, "INSIGHTS_API_KEY": self.admin_key, **NO_PHONE_HOME, **self.extra_env}
        command = [sys.executable, "-m", "collector", "up", "--no-dashboard",
                   "--data-dir", str(self.data_dir), "--port", str(self.port)]
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"collector exited: {self.log_path.read_text()[-2000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("collector did not become ready")

    def kill(self) -> None:
        """kill -9: no shutdown hook runs, as in a crash."""
        self._close_http()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        self._close_http()
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self.log.close()

    def client(self, headers: dict | None = None) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)
