"""The columns (name, KQL type) a tabular KQL expression produces, for the bridges that need them.

`search` looks in every string and dynamic column, and `project-reorder` lists every column, so
both must know the columns at their point in the pipeline. We ask DuckDB rather than guess: the
expression is translated like any query, the SQL passes the same read-only check, and it is bound
(`LIMIT 0`) on a private in-memory database holding empty tables with our public columns, never
the store. Binding is what types every column, `extend`s and joins included.
"""

from __future__ import annotations

import threading
from typing import Any

import duckdb

from collector.store.schema import TABLES

from .errors import SEMANTIC, KqlError
from .results import kql_type
from .scope import SCOPE, _quote, referenced_tables
from .series_functions import ensure_registered

_local = threading.local()


def _empty_store() -> duckdb.DuckDBPyConnection:
    con = getattr(_local, "con", None)
    if con is None:
        con = duckdb.connect(":memory:")
        con.execute("SET TimeZone = 'UTC'")
        ensure_registered(con)
        con.execute(f"CREATE SCHEMA {_quote(SCOPE)}")
        for table in TABLES.values():
            cols = ", ".join(f"{_quote(c.name)} {c.sql_type}" for c in table.columns)
            con.execute(f"CREATE TABLE {_quote(SCOPE)}.{_quote(table.name)} ({cols})")
        _local.con = con
    return con


def describe(sql: str, parameters: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, KQL type) of each column of translated *sql*, checked as any query is."""
    referenced_tables(sql)
    con = _empty_store()
    try:
        cursor = con.execute(f"SELECT * FROM ({sql}) LIMIT 0", parameters or None)
    except duckdb.Error:
        raise KqlError(SEMANTIC, "the columns before this operator could not be determined") from None
    return [(d[0], kql_type(d[1])) for d in cursor.description]
