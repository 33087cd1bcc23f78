"""Read cursors kept between KQL queries (issue 22, item 3).

`Store.reader()` opens a cursor (a DuckDB connection of its own) per reading task and closes it.
A KQL query's engine keeps statements prepared on its cursor for the plans it runs again
(collector/kql/prepared.py): on a cursor closed after one query they would never be used. So the
queries borrow their cursor from this pool and give it back:

- Only KQL queries borrow here (collector/kql/clickhouse/execute.query_connection): what they
  leave on a cursor is session state they set again or want kept (its time zone, its share of
  memory, prepared statements), never data, and no transaction: the engine finishes or replaces
  every result it stops reading, and rolls back the lookup's read transaction.
- A cursor whose task raised is closed, not kept (it may have been interrupted mid-statement).
- At most `size` idle cursors are kept; beyond, a returned cursor is closed. Borrowing never
  waits: with none idle, a new cursor is opened.
- `close()` (the store's) closes the idle ones, and every cursor returned after it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

IDLE_READERS = 8
"""Idle query cursors kept: the query API runs a few at once, each cursor holds its statements."""


class ReaderPool:
    """Cursors of one DuckDB connection, lent to one query at a time (see the module doc)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, size: int = IDLE_READERS) -> None:
        self._con = con
        self._size = size
        self._idle: list[duckdb.DuckDBPyConnection] = []
        self._lock = threading.Lock()
        self._closed = False

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one query; never share it between threads."""
        with self._lock:
            cursor = self._idle.pop() if self._idle else None
        if cursor is None:
            cursor = self._con.cursor()
        try:
            yield cursor
        except BaseException:
            cursor.close()
            raise
        with self._lock:
            if not self._closed and len(self._idle) < self._size:
                self._idle.append(cursor)
                return
        cursor.close()

    def idle(self) -> int:
        """How many cursors wait to be lent (for tests)."""
        return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, []
        for cursor in idle:
            try:
                cursor.close()
            except duckdb.Error:
                pass
