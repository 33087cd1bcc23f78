"""The KQL test store twice: DuckDB (tests/kql/store.py, our schema) and ClickHouse's engine in
process (chdb, through clickhouse-connect's chdb backend, the client the ClickHouse store uses), with
the same rows copied from one into the other.

The ClickHouse tables are the ClickHouse store's own DDL (collector/store/clickhouse/schema.py:
LowCardinality, codecs, skip indexes), so the lowering is exercised against the types it meets.
"""

from __future__ import annotations

import clickhouse_connect
import duckdb

from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.clickhouse.schema import create_statements
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES
from tests.kql.store import build

DATABASE = "insights_kql_test"


def build_both() -> tuple[duckdb.DuckDBPyConnection, ClickHouseConnection]:
    """The DuckDB test store and a chdb copy of its rows."""
    con = build()
    client = clickhouse_connect.get_client(dsn="chdb://memory")
    for statement in create_statements(DATABASE):
        client.command(statement)
    for table in TABLES.values():
        names = [*table.column_names, SERVICE_COLUMN, SEQ_COLUMN]
        select = ", ".join(f'CAST("{n}" AS VARCHAR) AS "{n}"' if n in _json_columns(table) else f'"{n}"'
                           for n in names)
        arrow = con.sql(f'SELECT {select} FROM "{table.name}"').to_arrow_table()
        if hasattr(arrow, "read_all"):
            arrow = arrow.read_all()
        if arrow.num_rows:
            client.insert_arrow(f"`{DATABASE}`.`{table.name}`", arrow)
    return con, ClickHouseConnection(lambda: client, DATABASE)


def _json_columns(table) -> set[str]:
    return {c.name for c in table.columns if c.kql_type == "dynamic"}
