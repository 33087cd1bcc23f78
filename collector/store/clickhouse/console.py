"""Console logs of services in ClickHouse: store/console.py's interface and rules (the newest
MAX_LINES_PER_SERVICE lines of each kind per service, `verified` lines trimmed apart from the others),
for lines that reach any of N collectors.

Lines are ordered by `seq`, which a collector makes without asking anyone: its clock in microseconds
shifted left by SEQ_RANDOM_BITS, plus random low bits. Lines sent to different collectors within the
same microsecond may tie-break either way, which a console tail cannot tell from the order they
were printed in anyway; the lines of one append keep their order. Trimming is a lightweight DELETE
issued now and then (when a service's kind may have grown TRIM_SLACK past its limit), not on every
append: a DELETE costs a mutation of the parts it touches.
"""

from __future__ import annotations

import secrets
import time
from concurrent.futures import Future
from datetime import datetime

import pyarrow as pa

from collector.store.clickhouse import control
from collector.store.console import MAX_LINES_PER_SERVICE, Line

SEQ_RANDOM_BITS = 12
TRIM_SLACK = 0.1
"""A kind is trimmed once it may hold this share more than its limit."""


class ConsoleLog:
    def __init__(self, connection: control.Connection, max_lines: int = MAX_LINES_PER_SERVICE) -> None:
        self._connection = connection
        self._table = control.table(connection, "console_logs")
        self._max_lines = max_lines
        self._appended: dict[tuple[str, bool], int] = {}

    def append(self, service: str, lines: list[Line], verified: bool) -> Future:
        """Insert the lines; the future resolves once ClickHouse has them."""
        return control.submit(lambda: self._insert(service, lines, verified))

    def tail(self, service: str, lines: int) -> list[tuple[datetime, str, str | None, str, bool]]:
        """The service's last `lines` lines, oldest first: (time, stream, instance, text, verified)."""
        rows = self._connection.client().query(
            f"SELECT time, stream, instance, line, verified FROM (SELECT * FROM {self._table} "
            "WHERE service = {service:String} ORDER BY seq DESC LIMIT {lines:UInt64}) ORDER BY seq",
            parameters={"service": service, "lines": lines}, settings=control.read_settings(self._connection)).result_rows
        return [(time_.replace(tzinfo=None), stream, instance, line, bool(ok)) for time_, stream, instance, line, ok in rows]

    def _insert(self, service: str, lines: list[Line], verified: bool) -> None:
        if not lines:
            return
        base = (time.time_ns() // 1000) << SEQ_RANDOM_BITS | secrets.randbits(SEQ_RANDOM_BITS - 4) << 4
        rows = pa.table({
            "service": [service] * len(lines),
            "seq": pa.array([base + index for index in range(len(lines))], pa.int64()),
            "time": pa.array([line[0] for line in lines], pa.timestamp("us", tz="UTC")),
            "stream": [line[1] for line in lines],
            "instance": pa.array([line[2] for line in lines], pa.string()),
            "line": [line[3] for line in lines],
            "verified": [verified] * len(lines),
        })
        self._connection.client().insert_arrow(
            self._table, rows, settings=control.write_settings(self._connection))
        self._trim_if_due(service, verified, len(lines))

    def _trim_if_due(self, service: str, verified: bool, added: int) -> None:
        key = (service, verified)
        self._appended[key] = self._appended.get(key, 0) + added
        if self._appended[key] < self._max_lines * TRIM_SLACK:
            return
        self._appended[key] = 0
        self._connection.client().command(
            f"DELETE FROM {self._table} WHERE service = {{service:String}} AND verified = {{verified:Bool}} AND seq <= "
            f"(SELECT seq FROM {self._table} WHERE service = {{service:String}} AND verified = {{verified:Bool}} "
            "ORDER BY seq DESC LIMIT 1 OFFSET {keep:UInt64})",
            parameters={"service": service, "verified": verified, "keep": self._max_lines},
            settings=control.write_settings(self._connection))
