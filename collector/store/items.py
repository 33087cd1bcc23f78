"""Which telemetry items a service already holds, by `itemId`: what makes an import idempotent (the
same exported item imported twice is stored once)."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from collector.store.schema import SERVICE_COLUMN, TABLES


def existing_item_ids(con: duckdb.DuckDBPyConnection, service: str, table: str, item_ids: list[str]) -> set[str]:
    """Those of `item_ids` that rows of `service` in `table` already carry. One query whatever the
    number of ids: they go in as an Arrow table, joined (hashed) against the table's itemId column."""
    if table not in TABLES:
        raise ValueError(f"no table named {table!r}")
    if not item_ids:
        return set()
    wanted = pa.table({"item_id": pa.array(item_ids, pa.string())})  # noqa: F841 (DuckDB scans it by name)
    found = con.execute(
        f'SELECT DISTINCT t."itemId" FROM "{table}" t JOIN wanted w ON t."itemId" = w.item_id '
        f'WHERE t."{SERVICE_COLUMN}" = ?', [service]
    ).fetchall()
    return {item_id for (item_id,) in found}
