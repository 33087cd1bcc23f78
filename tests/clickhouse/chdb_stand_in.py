"""Starting tests/clickhouse/chdb_server.py (the ClickHouse stand-in: no real server can run here)
as a process, for fixtures and benches."""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import httpx

SERVER = Path(__file__).with_name("chdb_server.py")


@dataclass
class ClickHouseServer:
    """A running stand-in: where it listens and who may log in. `url` is a store URL as collectors
    take it (`--store`, INSIGHTS_STORE), on the database `insights`; `store_url(db)` names another."""

    host: str
    port: int
    user: str
    password: str
    path: Path
    process: subprocess.Popen = field(repr=False)
    database: str = "insights"

    @property
    def url(self) -> str:
        return self.store_url(self.database)

    def store_url(self, database: str) -> str:
        return f"clickhouse://{self.user}@{self.host}:{self.port}/{database}"

    def fresh_url(self, prefix: str = "t") -> str:
        """A store URL on a database no other test uses (not created: `insights store migrate` does)."""
        return self.store_url(f"{prefix}_{uuid.uuid4().hex[:10]}")

    def client(self, database: str | None = None, **options):
        """A clickhouse-connect client as a collector makes one (compression off: the stand-in serves none)."""
        import clickhouse_connect

        return clickhouse_connect.get_client(host=self.host, port=self.port, username=self.user,
                                             password=self.password, database=database or "default",
                                             compress=False, **options)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_server(path: Path, port: int, user: str = "insights", password: str | None = None,
                 timeout: float = 60.0) -> ClickHouseServer:
    """Start the stand-in on 127.0.0.1:`port` with its database under `path`; return once it answers."""
    password = password if password is not None else secrets.token_urlsafe(12)
    path.mkdir(parents=True, exist_ok=True)
    log = open(path / "server.log", "ab")
    command = [sys.executable, str(SERVER), "--port", str(port), "--path", str(path), "--user", user, "--password", password]
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    server = ClickHouseServer("127.0.0.1", port, user, password, path, process)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chdb_server exited: {(path / 'server.log').read_text()[-2000:]}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=1).text == "Ok.\n":
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError("chdb_server did not answer /ping")


class StandInConnection:
    """The store's connection shape (database, cluster, a client per thread) over the stand-in, for
    tests of the control modules alone."""

    def __init__(self, server: ClickHouseServer, database: str) -> None:
        import threading

        self.server = server
        self.database = database
        self.cluster: str | None = None
        self._local = threading.local()

    def client(self):
        client = getattr(self._local, "client", None)
        if client is None:
            # the control modules qualify every table, so the client needs no database of its own
            client = self._local.client = self.server.client()
        return client
