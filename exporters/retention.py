"""Retention: delete a service's rows older than N days.

With export enabled, a row of an exported type is deleted only once it is exported (its `_seq` at
or below the type's checkpoint), so retention never takes what export has not yet delivered. Rows
of types the service does not export, and every row when export is off, go by age alone. (The
ingestion sequence comes from a DuckDB sequence, so deleting the newest rows never makes the writer
hand out a number twice.)
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collector.store.exports import ExportState
from collector.store.schema import TABLES
from exporters.settings import RECORD_TYPES, ExportSettings


def apply_retention(state: ExportState, service: str, settings: ExportSettings) -> int:
    """Delete what the settings allow; the number of rows deleted (0 without retention_days)."""
    if not settings.retention_days:
        return 0
    cutoff = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=settings.retention_days)
    exported = settings.types if settings.enabled else []
    guarded = {RECORD_TYPES[record_type].name: record_type for record_type in exported}
    return state.delete_expired(service, list(TABLES), cutoff, guarded)
