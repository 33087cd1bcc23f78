"""Retention: delete a service's rows older than N days, through the single writer.

With export enabled, a row of an exported type is deleted only once it is exported (its `_seq` at
or below the type's checkpoint), so retention never takes what export has not yet delivered. Rows
of types the service does not export, and every row when export is off, go by age alone.
(The writer keeps its highest `_seq` in `meta`, so deleting the newest rows never makes it hand
out a number twice.)
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import duckdb

from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES
from collector.store.writer import Writer
from exporters.settings import RECORD_TYPES, ExportSettings

_TYPE_OF_TABLE = {table.name: record_type for record_type, table in RECORD_TYPES.items()}


def apply_retention(writer: Writer, service: str, settings: ExportSettings) -> int:
    """Delete what the settings allow; the number of rows deleted (0 without retention_days)."""
    if not settings.retention_days:
        return 0
    cutoff = datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(days=settings.retention_days)
    guarded = set(settings.types) if settings.enabled else set()
    operation = lambda con: _delete(con, service, cutoff, guarded)  # noqa: E731
    deleted = writer.write(operation=operation).result()
    return deleted


def _delete(con: duckdb.DuckDBPyConnection, service: str, cutoff: datetime, guarded: set[str]) -> int:
    deleted = 0
    for table in TABLES:
        sql = (
            f'DELETE FROM "{table}" WHERE "{SERVICE_COLUMN}" = ? AND "timestamp" < ?'
        )
        params: list = [service, cutoff]
        record_type = _TYPE_OF_TABLE.get(table)
        if record_type in guarded:
            sql += (
                f' AND "{SEQ_COLUMN}" <= coalesce((SELECT seq FROM export_checkpoints '
                "WHERE service = ? AND record_type = ?), 0)"
            )
            params += [service, record_type]
        (count,) = con.execute(sql, params).fetchone()
        deleted += int(count)
    return deleted
