"""Run one KQL query against the store under one budget: compile, scope, execute under a timer,
cap and type the result.

The budget (budget.py) starts when the query arrives and covers everything: the compilation (in
the sandbox, killed at the deadline), the execution (interrupted at the same deadline, its sorts
and hash tables held to the query's share of memory) and what it may generate.

The connection we are given is a cursor of the collector's single read/write DuckDB instance, so
read-only is *our* guarantee: the only SQL sent to it is (a) `SELECT`s we build ourselves to learn
the catalog and time zone, (b) `SET`s of this cursor's session (its time zone and its memory
share: session state, not data), and (c) the query, which `scope.referenced_tables` has proven
to be a single SELECT over scoped tables; for a lookup of one request (lookup.py) also (d) the
index probe, a SELECT we build, and the read transaction that holds it and the query together;
for a reused plan (e) `PREPARE`/`EXECUTE`/`DEALLOCATE` of that same proven SELECT (prepared.py:
the cursor's session state, as its `SET`s are).
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

from . import flat, lookup, plugins, prepared, series_functions, typecheck
from . import scope as scoping
from .budget import Budget, out_of_time, query_memory
from .clickhouse import execute as clickhouse
from .compiler import compile_kql
from .errors import LIMIT, TIMEOUT, UNSUPPORTED, KqlError, from_duckdb
from .results import QueryResult, collect
from .timespan import parse_window
from .translation import Translation

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
    deadline: float | None = None,
    memory_limit: str | None = None,
) -> QueryResult:
    """Answer *text* with the rows of *services* (None: every service) inside *timespan*, within
    *timeout_s* (or by *deadline*, a time.monotonic() instant, if that comes first: a batch's)
    and a share of *memory_limit*, the DuckDB memory limit of the whole collector.

    *con* is a DuckDB cursor, or the ClickHouse store's connection (`.client()`, `.database`):
    then the same translation is lowered to ClickHouse SQL and run there (clickhouse/execute.py)."""
    started = time.perf_counter()
    budget = Budget.starting_now(timeout_s, deadline, query_memory(memory_limit))
    try:
        now = datetime.now(UTC).replace(tzinfo=None)
        scope = scoping.Scope(services, parse_window(timespan, now))
        on_clickhouse = clickhouse.is_clickhouse(con)

        def run(kql: str, row_cap: int) -> tuple[Translation, str, list, list, bool]:
            key = (kql, None if services is None else tuple(services))
            planned = _PLANS.get(key) if scope.window is None and not on_clickhouse else None
            if planned is not None:
                _prepare_session(con, planned[0].sql, budget)
                return (*planned, *_execute(con, planned[1], {}, kql, budget, row_cap, max_bytes, reused=True))
            compiled = compile_kql(kql, now, budget)
            if on_clickhouse:
                return (compiled, *clickhouse.run_compiled(
                    con, compiled, kql, services=services, window=scope.window, budget=budget,
                    max_rows=row_cap, max_bytes=max_bytes))
            catalog = _prepare_session(con, compiled.sql, budget)
            with lookup.one_snapshot(con, compiled.lookup):
                narrowed = lookup.narrowed(scope, con, compiled.lookup, compiled.tables)
                sql = flat.apply(compiled.sql, narrowed, catalog, compiled.tables)
                reused = scope.window is None and _plan_reusable(kql, compiled, catalog)
                if reused:
                    _PLANS.put(key, compiled, sql)
                return (compiled, sql, *_execute(con, sql, compiled.parameters, kql, budget, row_cap, max_bytes,
                                                 reused=reused))

        # Plugins whose columns depend on the data ask it first, as the caller (plugins.py).
        resolved = plugins.resolve(text, lambda kql: run(kql, plugins.MAX_DISCOVERED + 1)[2:4])
        compiled, sql, columns, rows, truncated = run(resolved, max_rows)
    except RecursionError:
        raise KqlError(LIMIT, "the query is nested too deeply") from None
    elapsed = time.perf_counter() - started
    return QueryResult(
        columns=columns, rows=rows, truncated=truncated, visualization=compiled.visualization,
        sql=sql, statistics={"query": {"executionTime": round(elapsed, 6), "resultRows": len(rows)}},
    )


class _Plans:
    """The scoped SQL of the last queries, by (KQL text, services): a dashboard's queries repeat,
    and for one without a time window, a lookup or a clock (`now()`, `ago()`, `set query_now`)
    the scoped SQL is a function of those two alone (compiler.py caches the translation by text,
    flat.py the plan by SQL; this skips both lookups, the scope and the rendering, which were a
    tenth of a small query). Cleared whole when full: simpler than LRU, and refilled by use."""

    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._entries: dict[tuple[str, tuple[str, ...] | None], tuple[Translation, str]] = {}

    def get(self, key: tuple[str, tuple[str, ...] | None]) -> tuple[Translation, str] | None:
        return self._entries.get(key)

    def put(self, key: tuple[str, tuple[str, ...] | None], compiled: Translation, sql: str) -> None:
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (compiled, sql)


_PLANS = _Plans()


def _plan_reusable(kql: str, compiled: Translation, catalog: tuple[str, ...]) -> bool:
    """Whether the scoped SQL of *kql* is the same on every run (see _Plans)."""
    return (not catalog and not compiled.parameters and compiled.lookup is None
            and "query_now" not in kql)


def explain(text: str, services: Sequence[str] | None = None, timeout_s: float = 30) -> str:
    """The SQL *text* runs as, with each table already narrowed to *services*."""
    now = datetime.now(UTC).replace(tzinfo=None)
    plugins.resolve(text, _no_data)
    compiled = compile_kql(text, now, Budget.starting_now(timeout_s))
    return flat.apply(compiled.sql, scoping.Scope(services), (), compiled.tables)


def _no_data(kql: str) -> tuple[list, list]:
    raise KqlError(UNSUPPORTED, "the SQL of evaluate bag_unpack, pivot and narrow depends on the data: "
                   "run the query instead of explaining it")


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


def _execute(con, sql: str, parameters: dict, text: str, budget: Budget, max_rows: int, max_bytes: int,
             reused: bool = False):
    """Execute under the watchdog, which interrupts the connection at the deadline, and fetch
    within the caps. A *reused* plan's SQL runs as a statement prepared on *con* (prepared.py)."""
    token = _WATCHDOG.arm(con, budget.check("starting it"))
    try:
        if reused:
            cursor = prepared.execute(con, sql)
        else:
            cursor = con.execute(sql, parameters) if parameters else con.execute(sql)
        columns, rows, truncated = collect(cursor, max_rows, max_bytes)
        if truncated:  # end the unread rest (and its read transaction): the store may keep the cursor
            con.execute("SELECT 1").fetchall()
        return columns, rows, truncated
    except duckdb.Error as exc:
        typed = isinstance(exc, (duckdb.BinderException, duckdb.ConversionException))
        error = (typed and typecheck.blame(text)) or from_duckdb(exc, text)
        if error.code == TIMEOUT:
            raise out_of_time(budget.timeout_s, "running it") from None
        if error.code == LIMIT and isinstance(exc, duckdb.OutOfMemoryException):
            error.message += _memory_note(budget)
        raise error from None
    finally:
        _WATCHDOG.disarm(token)


def _memory_note(budget: Budget) -> str:
    if budget.memory_bytes is None:
        return " (the collector's memory limit, INSIGHTS_MEMORY_LIMIT)"
    return (f" ({budget.memory_bytes >> 20} MiB for one query: half the collector's memory, "
            "INSIGHTS_MEMORY_LIMIT)")


@lru_cache(maxsize=512)
def _zone_sensitive(sql: str) -> bool:
    """Whether *sql* has a construct whose answer depends on the session time zone (cached: the
    scan of a long SQL text was a measurable part of a small query)."""
    return _ZONE_SENSITIVE.search(sql) is not None


def _prepare_session(con, sql: str, budget: Budget) -> tuple[str, ...]:
    """This cursor's share of memory; a UTC session, which the translator's datetime SQL assumes;
    and how to name the tables.

    SQL with no zone-sensitive construct skips the zone check (a round trip on every query
    otherwise). Bare names are enough: no CTE can shadow them, because every CTE name the
    translator makes starts with `_` (scope.referenced_tables refuses any other).
    """
    try:
        if series_functions.uses_udfs(sql):
            series_functions.ensure_registered(con)
        if budget.memory_bytes is not None:
            con.execute(f"SET operator_memory_limit = '{budget.memory_bytes >> 20}MiB'")
        if not _zone_sensitive(sql):
            return ()
        zone = con.execute("SELECT current_setting('TimeZone')").fetchone()[0]
        if zone not in ("UTC", "Etc/UTC"):
            con.execute("SET TimeZone = 'UTC'")
    except duckdb.Error as exc:
        raise from_duckdb(exc, "") from None
    return ()


__all__ = ["run_query", "explain", "QueryResult", "KqlError"]
