"""Prepared statements for the scoped SQL a connection runs again (issue 22, item 3).

DuckDB parses, binds and plans every SQL text it is sent; for a small query that was a fifth of
its time. A plan the engine reuses (engine._Plans: no window, lookup, clock or parameter can change
its SQL) is the same text on every run, so the second time a connection runs it, it is `PREPARE`d
there under a name of ours and from then on `EXECUTE`d: DuckDB keeps the bound plan and rebinds it
itself when the catalog changed since (a column added, a table recreated by a migration).

- Only SQL the engine built and scope.referenced_tables proved to be one read-only SELECT is
  prepared, so the statement a name stands for is such a SELECT; `PREPARE`/`EXECUTE`/`DEALLOCATE`
  are session state of the cursor, like its `SET`s, not data.
- Prepared on the *second* run on a connection: a cursor used once (one per API request, unless
  the store pools them) pays nothing for it.
- At most `PER_CONNECTION` statements per connection, least recently used deallocated first; the
  bookkeeping is dropped with the connection (a weak reference).
- A statement is prepared again after `MAX_AGE_S`: DuckDB rebinds on a catalog change, not as the
  rows grow, and a plan's join order and estimates come from the table sizes when it was planned.
"""

from __future__ import annotations

import itertools
import threading
import time
import weakref
from collections import OrderedDict

import duckdb

PER_CONNECTION = 32
"""Prepared statements one connection keeps (each holds a bound plan: a few KB to a few 100 KB)."""
MAX_AGE_S = 60.0
"""Seconds a prepared plan is used before it is planned again on the rows there are then."""

_SEEN = ""
"""The mark of SQL run once on a connection, not prepared yet."""


class _Statements:
    """What one connection has run and prepared: SQL -> its statement's name, or _SEEN."""

    def __init__(self) -> None:
        self.names: OrderedDict[str, str] = OrderedDict()
        self.born: dict[str, float] = {}
        self.prepared = 0


_CONNECTIONS: weakref.WeakKeyDictionary[duckdb.DuckDBPyConnection, _Statements] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()
_IDS = itertools.count()


def execute(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyConnection:
    """Run *sql* (an engine-built, reusable SELECT, see the module doc) on *con*: as it is the
    first time, through a statement prepared on *con* from the second on."""
    statements = _statements(con)
    name = statements.names.get(sql)
    if name is None:
        statements.names[sql] = _SEEN
        _forget_oldest(con, statements)
        return con.execute(sql)
    statements.names.move_to_end(sql)
    if name != _SEEN and time.monotonic() - statements.born[name] > MAX_AGE_S:
        _deallocate(con, statements, sql)
        statements.names[sql] = name = _SEEN
    if name == _SEEN:
        name = f"_kql_plan_{next(_IDS)}"
        try:
            con.execute(f"PREPARE {name} AS {sql}")
        except duckdb.Error:  # the plain run reports the error as any other query's
            return con.execute(sql)
        statements.names[sql] = name
        statements.born[name] = time.monotonic()
        statements.prepared += 1
        _forget_oldest(con, statements)
    return con.execute(f"EXECUTE {name}")


def _statements(con: duckdb.DuckDBPyConnection) -> _Statements:
    found = _CONNECTIONS.get(con)
    if found is None:
        with _LOCK:
            found = _CONNECTIONS.setdefault(con, _Statements())
    return found


def _forget_oldest(con: duckdb.DuckDBPyConnection, statements: _Statements) -> None:
    """Keep at most PER_CONNECTION prepared (and as many merely seen) SQL texts on *con*."""
    names = statements.names
    while len(names) > 2 * PER_CONNECTION or statements.prepared > PER_CONNECTION:
        sql = next(iter(names))
        _deallocate(con, statements, sql)
        del names[sql]


def _deallocate(con: duckdb.DuckDBPyConnection, statements: _Statements, sql: str) -> None:
    """Drop the statement prepared for *sql* on *con*, if there is one (its entry stays)."""
    name = statements.names[sql]
    if name == _SEEN:
        return
    statements.prepared -= 1
    del statements.born[name]
    try:
        con.execute(f"DEALLOCATE {name}")
    except duckdb.Error:
        pass


def prepared_count(con: duckdb.DuckDBPyConnection) -> int:
    """How many statements this module keeps prepared on *con* (for tests and the bench)."""
    found = _CONNECTIONS.get(con)
    return 0 if found is None else found.prepared
