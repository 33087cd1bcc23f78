"""Run one KQL query against the store: compile, scope, execute under a timer, cap and type the result.

The connection we are given is a cursor of the collector's single read/write DuckDB instance, so
read-only is *our* guarantee: the only SQL sent to it is (a) `SELECT`s we build ourselves to learn
the catalog and time zone, (b) one `SET TimeZone` if that session is not already UTC (session
state, not data), and (c) the query, which `scope.referenced_tables` has proven to be a single
SELECT over scoped tables.
"""

from __future__ import annotations

import heapq
import itertools
import re
import threading
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

import duckdb

from . import scope as scoping
from .compiler import compile_kql
from .errors import KqlError, from_duckdb
from .results import QueryResult, collect
from .timespan import parse_window

_ZONE_SENSITIVE = re.compile(
    r"TIMESTAMPTZ|TIME ZONE|now\(|current_|strptime|strftime|to_timestamp|epoch|timezone|date_trunc"
    r"|make_timestamp|::TIMESTAMP|AS TIMESTAMP", re.IGNORECASE)


def run_query(
    con: duckdb.DuckDBPyConnection,
    text: str,
    *,
    services: Sequence[str] | None,
    timespan: str | None = None,
    timeout_s: float = 30,
    max_rows: int = 500_000,
    max_bytes: int = 64 * 2**20,
) -> QueryResult:
    """Answer *text* with the rows of *services* (None: every service) inside *timespan*."""
    started = time.perf_counter()
    now = datetime.now(UTC).replace(tzinfo=None)
    window = parse_window(timespan, now)
    compiled = compile_kql(text, now)
    try:
        scoping.placeholders(compiled.sql)
    except scoping.UnknownTable as exc:
        raise exc.at(text, exc.name) from None
    catalog = _prepare_session(con, compiled.sql)
    sql = scoping.apply(compiled.sql, scoping.Scope(services, window), catalog)
    columns, rows, truncated = _execute(con, sql, compiled.parameters, text,
                                        timeout_s, max_rows, max_bytes)
    elapsed = time.perf_counter() - started
    return QueryResult(
        columns=columns, rows=rows, truncated=truncated, visualization=compiled.visualization,
        sql=sql, statistics={"query": {"executionTime": round(elapsed, 6), "resultRows": len(rows)}},
    )


def explain(text: str, services: Sequence[str] | None = None) -> str:
    """The SQL *text* runs as, with each table already narrowed to *services*."""
    now = datetime.now(UTC).replace(tzinfo=None)
    compiled = compile_kql(text, now)
    try:
        return scoping.apply(compiled.sql, scoping.Scope(services), ())
    except scoping.UnknownTable as exc:
        raise exc.at(text, exc.name) from None


class _Watchdog:
    """One daemon thread that interrupts connections whose query outlived its deadline.

    A `threading.Timer` per query starts (and stops) a thread every time, which was a measurable
    part of a small query; here arming and disarming is a heap push and a set discard.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._heap: list[tuple[float, int, duckdb.DuckDBPyConnection]] = []
        self._armed: set[int] = set()
        self._ids = itertools.count()
        self._thread: threading.Thread | None = None

    def arm(self, con: duckdb.DuckDBPyConnection, timeout_s: float) -> int:
        token = next(self._ids)
        with self._cond:
            self._armed.add(token)
            heapq.heappush(self._heap, (time.monotonic() + timeout_s, token, con))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="kql-watchdog", daemon=True)
                self._thread.start()
            elif self._heap[0][1] == token:
                self._cond.notify()
        return token

    def disarm(self, token: int) -> None:
        with self._cond:
            self._armed.discard(token)

    def _run(self) -> None:
        with self._cond:
            while True:
                while self._heap and self._heap[0][1] not in self._armed:
                    heapq.heappop(self._heap)
                if not self._heap:
                    self._cond.wait()
                    continue
                deadline, token, con = self._heap[0]
                delay = deadline - time.monotonic()
                if delay > 0:
                    self._cond.wait(delay)
                    continue
                heapq.heappop(self._heap)
                if token in self._armed:
                    self._armed.discard(token)
                    try:
                        con.interrupt()
                    except duckdb.Error:
                        pass


_WATCHDOG = _Watchdog()


def _execute(con, sql: str, parameters: dict, text: str, timeout_s: float,
             max_rows: int, max_bytes: int):
    """Execute under the watchdog, which interrupts the connection at the deadline, and fetch
    within the caps."""
    token = _WATCHDOG.arm(con, timeout_s)
    try:
        cursor = con.execute(sql, parameters) if parameters else con.execute(sql)
        return collect(cursor, max_rows, max_bytes)
    except duckdb.Error as exc:
        raise from_duckdb(exc, text) from None
    finally:
        _WATCHDOG.disarm(token)


@lru_cache(maxsize=512)
def _zone_sensitive(sql: str) -> bool:
    """Whether *sql* has a construct whose answer depends on the session time zone (cached: the
    scan of a long SQL text was a measurable part of a small query)."""
    return _ZONE_SENSITIVE.search(sql) is not None


def _prepare_session(con, sql: str) -> tuple[str, ...]:
    """A UTC session, which the translator's datetime SQL assumes; and how to name the tables.

    SQL with no zone-sensitive construct skips the check (a round trip on every query otherwise).
    Bare names are enough: no CTE can shadow them, because every CTE name the translator makes
    starts with `_` (scope.referenced_tables refuses any other).
    """
    if not _zone_sensitive(sql):
        return ()
    try:
        zone = con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
        if zone not in ("UTC", "Etc/UTC"):
            con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error as exc:
        raise from_duckdb(exc, "") from None
    return ()


__all__ = ["run_query", "explain", "QueryResult", "KqlError"]
