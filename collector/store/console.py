"""Console logs of services: what a scoring wrapper's processes printed, kept whether or not App
Insights is on, readable after a crash.

Each service keeps its newest MAX_LINES_PER_SERVICE lines of each kind: `verified` lines came with
the service's API key (or the admin key), the others with its instrumentation key alone, which is
no secret. The two are trimmed apart, so whoever holds only an instrumentation key can push out
no line a key holder sent."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from datetime import datetime

import duckdb
import pyarrow as pa

from collector.store.writer import Writer

MAX_LINES_PER_SERVICE = 100_000

DDL = (
    "CREATE SEQUENCE IF NOT EXISTS console_logs_seq",
    """CREATE TABLE IF NOT EXISTS console_logs (
        service VARCHAR NOT NULL,
        seq BIGINT NOT NULL DEFAULT nextval('console_logs_seq'),
        time TIMESTAMP NOT NULL,
        stream VARCHAR NOT NULL,
        instance VARCHAR,
        line VARCHAR NOT NULL,
        verified BOOLEAN NOT NULL DEFAULT false
    )""",
    "ALTER TABLE console_logs ADD COLUMN IF NOT EXISTS verified BOOLEAN DEFAULT false",
)

Line = tuple[datetime, str, str | None, str]
"""(time, stream, instance, text): one line as the wrapper sent it, time in UTC without a zone."""

_SCHEMA = pa.schema([("service", pa.string()), ("time", pa.timestamp("us")), ("stream", pa.string()),
                     ("instance", pa.string()), ("line", pa.string())])


class ConsoleLog:
    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer):
        self._reader = reader
        self._writer = writer

    def append(self, service: str, lines: list[Line], verified: bool) -> Future:
        """Queue the lines to the writer (the oldest of their kind beyond the service's limit go in
        the same commit); the future resolves once they are committed."""
        return self._writer.write(operation=lambda con: _insert(con, service, lines, verified))

    def tail(self, service: str, lines: int) -> list[tuple[datetime, str, str | None, str, bool]]:
        """The service's last `lines` lines, oldest first: (time, stream, instance, text, verified)."""
        with self._reader() as cursor:
            return cursor.execute(
                "SELECT time, stream, instance, line, coalesce(verified, false) FROM (SELECT * FROM console_logs "
                "WHERE service = ? ORDER BY seq DESC LIMIT ?) ORDER BY seq", [service, lines]).fetchall()


def _insert(con: duckdb.DuckDBPyConnection, service: str, lines: list[Line], verified: bool) -> None:
    incoming = pa.table({  # noqa: F841 (read by DuckDB, by name, below)
        "service": [service] * len(lines),
        "time": [line[0] for line in lines],
        "stream": [line[1] for line in lines],
        "instance": [line[2] for line in lines],
        "line": [line[3] for line in lines],
    }, schema=_SCHEMA)
    con.execute("INSERT INTO console_logs (service, time, stream, instance, line, verified) "
                "SELECT service, time, stream, instance, line, ? FROM incoming", [verified])
    con.execute(
        "DELETE FROM console_logs WHERE service = ? AND coalesce(verified, false) = ? AND seq <= "
        "(SELECT seq FROM console_logs WHERE service = ? AND coalesce(verified, false) = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)",
        [service, verified, service, verified, MAX_LINES_PER_SERVICE])
