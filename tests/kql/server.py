"""The query router in a small in-process collector: real auth and routes, a stand-in store.

Lets the API tests drive a real HTTP server with LogsQueryClient without the whole collector
(ingestion pipeline, writer) being involved; the same tests also run against the real process.
"""

from __future__ import annotations

import threading
import time
import uuid
from contextlib import contextmanager
from types import SimpleNamespace

import duckdb
import orjson
import uvicorn
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse

from collector.api import query
from collector.ingest.rows import row_from_json
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES

ADMIN_KEY = "kql-test-admin-key"


class _Registry:
    def __init__(self, services: list[SimpleNamespace]):
        self._services = services

    def all(self):
        return list(self._services)

    def by_api_key(self, key: str):
        return next((s for s in self._services if s.api_key == key), None)

    def by_instrumentation_key(self, ikey: str):
        return next((s for s in self._services if s.instrumentation_key == ikey.lower()), None)


class _Store:
    def __init__(self):
        self.con = duckdb.connect(":memory:")
        for table in TABLES.values():
            self.con.execute(table.ddl())
        self.seq = 0

    def load(self, service: str, lines: list[bytes]) -> None:
        for line in lines:
            table, row = row_from_json(orjson.loads(line))
            self.seq += 1
            row = {**row, SERVICE_COLUMN: service, SEQ_COLUMN: self.seq}
            names = ", ".join(f'"{c}"' for c in row)
            # The stored form keeps datetimes as epoch microseconds (what the writer's Arrow wants).
            marks = ", ".join("make_timestamp(?)" if c == "timestamp" else "?" for c in row)
            self.con.execute(f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', list(row.values()))

    @contextmanager
    def reader(self):
        cursor = self.con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def serve_router(now: float, rows):
    """Serve the query router on 127.0.0.1 with services `kqlmine-*` and `kqltheirs-*` loaded."""
    from tests.kql.test_api import Target

    store = _Store()
    services = []
    for prefix in ("kqlmine", "kqltheirs"):
        service = SimpleNamespace(name=f"{prefix}-{uuid.uuid4().hex[:6]}", api_key=uuid.uuid4().hex,
                                  instrumentation_key=str(uuid.uuid4()))
        store.load(service.name, rows(service.name, now))
        services.append(service)
    app = FastAPI(default_response_class=ORJSONResponse)
    app.include_router(query.router)
    app.state.store, app.state.registry, app.state.admin_key = store, _Registry(services), ADMIN_KEY
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:
        yield Target(f"http://127.0.0.1:{port}", ADMIN_KEY, vars(services[0]), vars(services[1]))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        store.con.close()
