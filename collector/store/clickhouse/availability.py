"""Availability tests on ClickHouse: store/availability.py's interface (same methods, same
dataclasses), shared by N collectors, so a test made through one collector is probed by whichever
collector holds the alerts lease (alerts/extension.py), and its runs land in ClickHouse's
`availabilityResults`, where KQL on any collector reads them. A collector reads the tests at most
every alerts.CACHE_S (2 s), and at once after its own writes.

Two tables (alert_tables.py), because two kinds of writer change them:
- `availability_tests`: the definitions users make through any collector, a ReplacingMergeTree
  (version, is_deleted) keyed by (service, name), read with FINAL; a delete is a row with
  is_deleted = 1;
- `availability_last_runs`: each test's last run, written by the prober, keyed by the test's
  version as well: saving a test (a new version) leaves it with no last run, so a changed test
  runs at once, as on DuckDB, without the prober and the user writing one row.
A run's result row is inserted (through the ClickHouse writer, synchronously) before its last run
is: a crash between the two runs the test once more, and loses no result.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import orjson

from collector.store.availability import Run, Test, results_rows
from collector.store.clickhouse import control
from collector.store.clickhouse.alerts import Cached
from collector.store.writer import Writer


class AvailabilityState:
    def __init__(self, connection: control.Connection, writer: Writer) -> None:
        self._connection = connection
        self._writer = writer
        self._tests = Cached(self._read_tests)

    def tests(self, service: str | None = None) -> list[Test]:
        """Every test (of `service`), as read at most alerts.CACHE_S ago or since this collector's last
        write (the prober asks twice a second)."""
        return [test for test in self._tests.get() if service is None or test.service == service]

    def _read_tests(self) -> list[Test]:
        tests = self._query(f"SELECT service, name, spec, version FROM {self._table('availability_tests')} FINAL "
                            "WHERE NOT is_deleted ORDER BY service, name", {})
        runs = {(s, n, v): last for s, n, v, last in self._query(
            f"SELECT service, name, test_version, max(last_run) FROM {self._table('availability_last_runs')} "
            "GROUP BY service, name, test_version", {})}
        out = []
        for test_service, name, spec, version in tests:
            last = runs.get((test_service, name, version))
            out.append(Test(test_service, name, orjson.loads(spec),
                            None if last is None else last.replace(tzinfo=None)))
        return out

    def save(self, service: str, name: str, spec: dict) -> None:
        self._put(service, name, orjson.dumps(spec).decode(), deleted=False)

    def delete(self, service: str, name: str) -> None:
        self._put(service, name, "{}", deleted=True)

    def record(self, service: str, run: Run) -> None:
        """The run as an availabilityResults row, then the test's last run (see the module docstring)."""
        self._writer.write(results_rows(service, run)).result()
        versions = self._query(f"SELECT version FROM {self._table('availability_tests')} FINAL WHERE "
                               "service = {service:String} AND name = {name:String} AND NOT is_deleted",
                               {"service": service, "name": run.name})
        if versions:
            control.submit(lambda: self._insert(
                "availability_last_runs", ("service", "name", "test_version", "last_run"),
                [[service, run.name, versions[0][0], run.timestamp.replace(tzinfo=UTC)]])).result()
            self._tests.clear()

    def _put(self, service: str, name: str, spec: str, deleted: bool) -> None:
        control.submit(lambda: self._insert(
            "availability_tests", ("service", "name", "spec", "updated_at", "version", "is_deleted"),
            [[service, name, spec, datetime.now(UTC), time.time_ns() // 1000, int(deleted)]])).result()
        self._tests.clear()

    def _table(self, name: str) -> str:
        return control.table(self._connection, name)

    def _query(self, sql: str, parameters: dict) -> list[tuple]:
        return self._connection.client().query(sql, parameters=parameters,
                                               settings=control.read_settings(self._connection)).result_rows

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[list]) -> None:
        self._connection.client().insert(self._table(table), rows, column_names=list(columns),
                                         settings=control.write_settings(self._connection))
