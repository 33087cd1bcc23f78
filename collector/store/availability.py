"""Availability tests (synthetic probes of a URL) and each run as an `availabilityResults` row.

A test's spec (URL, method, body, headers, expected status, content match, timeout, frequency) is
validated by the alerts package; this module stores it, and commits a run's row through the single
writer into the App Insights table, where KQL, the dashboard and alert rules read it.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import orjson
import pyarrow as pa

from collector.store.changes import Changes, Memo
from collector.store.schema import SERVICE_COLUMN, TABLES
from collector.store.writer import Writer

DDL = (
    """CREATE TABLE IF NOT EXISTS availability_tests (
        service VARCHAR NOT NULL, name VARCHAR NOT NULL, spec JSON NOT NULL, last_run TIMESTAMP,
        updated_at TIMESTAMP NOT NULL)""",
)


@dataclass(frozen=True)
class Test:
    service: str
    name: str
    spec: dict
    last_run: datetime | None = None


@dataclass(frozen=True)
class Run:
    """One probe's outcome, as App Insights records it."""

    timestamp: datetime
    """Naive UTC."""
    id: str
    name: str
    location: str
    success: bool
    duration_ms: float
    message: str
    size: int | None
    details: dict


_EPOCH = datetime(1970, 1, 1)


class AvailabilityState:
    """Every test, as the probes poll them, is kept between writes (changes.py): an idle look
    costs no query."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer):
        self._reader = reader
        self._writer = writer
        self._changes = Changes()
        self._all: Memo[list[Test]] = Memo(self._changes, datetime.now)

    def tests(self, service: str | None = None) -> list[Test]:
        if service is None:
            return list(self._all.get(lambda: (self._tests(None), None)))
        return self._tests(service)

    def _tests(self, service: str | None) -> list[Test]:
        with self._reader() as cursor:
            rows = cursor.execute("SELECT service, name, spec, last_run FROM availability_tests "
                                  "WHERE ?::VARCHAR IS NULL OR service = ? ORDER BY service, name",
                                  [service, service]).fetchall()
        return [Test(r[0], r[1], orjson.loads(r[2]), r[3]) for r in rows]

    def save(self, service: str, name: str, spec: dict) -> None:
        def operation(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("DELETE FROM availability_tests WHERE service = ? AND name = ?", [service, name])
            con.execute("INSERT INTO availability_tests VALUES (?, ?, ?, NULL, now()::TIMESTAMP)",
                        [service, name, orjson.dumps(spec).decode()])
        self._commit(operation)

    def delete(self, service: str, name: str) -> None:
        self._commit(lambda con: con.execute(
            "DELETE FROM availability_tests WHERE service = ? AND name = ?", [service, name]))

    def record(self, service: str, run: Run) -> None:
        """The run as an availabilityResults row, and the test's last run, in one commit."""
        self._commit(lambda con: con.execute(
            "UPDATE availability_tests SET last_run = ? WHERE service = ? AND name = ?",
            [run.timestamp, service, run.name]), results_rows(service, run))

    def _commit(self, operation: Callable[[duckdb.DuckDBPyConnection], object],
                tables: dict[str, pa.Table] | None = None) -> None:
        """`operation` (and `tables`) in one commit, counted as a change once done (changes.py)."""
        self._changes.track(self._writer.write(tables, operation=operation)).result()


def results_rows(service: str, run: Run) -> dict[str, pa.Table]:
    """The run as the writer takes it: one availabilityResults row, with App Insights' columns."""
    table = TABLES["availabilityResults"]
    row = {
        "timestamp": (run.timestamp - _EPOCH) // timedelta(microseconds=1),
        "itemType": table.item_type, "itemId": run.id, "itemCount": 1, "id": run.id, "name": run.name,
        "location": run.location, "success": run.success, "message": run.message,
        "duration": run.duration_ms, "performanceBucket": _bucket(run.duration_ms), "size": run.size,
        "customDimensions": orjson.dumps(run.details).decode(), SERVICE_COLUMN: service,
    }
    return {table.name: table.to_arrow([row])}


def _bucket(ms: float) -> str:
    """App Insights' performanceBucket label for a duration."""
    for limit, label in ((250, "<250ms"), (500, "250ms-500ms"), (1000, "500ms-1sec"), (3000, "1sec-3sec"),
                         (7000, "3sec-7sec"), (15000, "7sec-15sec"), (30000, "15sec-30sec"), (60000, "30sec-1min")):
        if ms < limit:
            return label
    return ">=1min"
