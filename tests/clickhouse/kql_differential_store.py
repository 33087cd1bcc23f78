"""The KQL test store twice: DuckDB (tests/kql/store.py, our schema) and ClickHouse's engine in
process (chdb, through clickhouse-connect's chdb backend, the client the ClickHouse store uses), with
the same rows copied from one into the other.

The ClickHouse tables are 21a's DDL (collector/store/clickhouse/schema.py) when it is there;
until then a provisional mapping of schema.py's KQL types (`_PROVISIONAL`), so the lowering is
exercised against the types it must expect either way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import clickhouse_connect
import duckdb

from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES
from tests.kql.store import build

DATABASE = "insights_kql_test"

_PROVISIONAL = {
    "datetime": "Nullable(DateTime64(6, 'UTC'))",
    "string": "Nullable(String)",
    "int": "Nullable(Int32)",
    "long": "Nullable(Int64)",
    "real": "Nullable(Float64)",
    "bool": "Nullable(Bool)",
    "dynamic": "Nullable(String)",
}


@dataclass
class ChdbConnection:
    """What the engine's ClickHouse path needs of the store: a client and the database's name."""

    database: str
    _client: Any

    def client(self) -> Any:
        return self._client


def clickhouse_ddl(database: str) -> list[str]:
    """The CREATE statements for *database*: 21a's schema module when present, else provisional."""
    try:
        from collector.store.clickhouse import schema as ch_schema  # type: ignore[import-not-found]
    except ImportError:
        ch_schema = None
    if ch_schema is not None and hasattr(ch_schema, "create_statements"):
        return list(ch_schema.create_statements(database))
    statements = [f"CREATE DATABASE IF NOT EXISTS `{database}`"]
    for table in TABLES.values():
        columns = [f"`{c.name}` {_PROVISIONAL[c.kql_type]}" for c in table.columns]
        columns += [f"`{SERVICE_COLUMN}` LowCardinality(String)", f"`{SEQ_COLUMN}` Int64"]
        statements.append(f"CREATE TABLE IF NOT EXISTS `{database}`.`{table.name}` ({', '.join(columns)}) "
                          f"ENGINE = MergeTree ORDER BY (`{SERVICE_COLUMN}`, `{SEQ_COLUMN}`)")
    return statements


def build_both() -> tuple[duckdb.DuckDBPyConnection, ChdbConnection]:
    """The DuckDB test store and a chdb copy of its rows."""
    con = build()
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    for statement in clickhouse_ddl(DATABASE):
        client.command(statement)
    for table in TABLES.values():
        names = [*table.column_names, SERVICE_COLUMN, SEQ_COLUMN]
        select = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' if n in _json_columns(table) else f'"{n}"'
                           for n in names)
        arrow = con.execute(f'SELECT {select} FROM "{table.name}"').to_arrow_table()
        if hasattr(arrow, "read_all"):
            arrow = arrow.read_all()
        if arrow.num_rows:
            client.insert_arrow(f"`{DATABASE}`.`{table.name}`", arrow)
    return con, ChdbConnection(DATABASE, client)


def _json_columns(table) -> set[str]:
    return {c.name for c in table.columns if c.kql_type == "dynamic"}
