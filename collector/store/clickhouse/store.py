"""The store on ClickHouse: telemetry in a ClickHouse database, control state in a local DuckDB file.

`ClickHouseStore` is a `Store` (the collector's code takes one) whose telemetry goes elsewhere:
- `writer` is the ClickHouse writer (writer.py): App Insights rows are inserted into ClickHouse;
  the stats, operations and hooks of a write still commit to the local DuckDB file.
- `clickhouse` is the connection the KQL engine runs queries through (`.client()`, `.database`,
  `.cluster`), and `retention` deletes expired telemetry there (retention.py).
- The rest of `Store`'s state (services and keys, console logs, counters, export state, alerts,
  availability tests, models, endpoints, monitors, the map's rollups) stays, on this class, in
  `telemetry.duckdb` in the data dir as with the DuckDB store; that file holds no telemetry. It is
  the base the collector does not open alone: shared.py's SharedClickHouseStore, which the collector
  opens, moves every piece of state N collectors must share into ClickHouse (its docstring lists
  them); what it leaves in the local file is the writer's per-collector bookkeeping.
- Direct DuckDB reads of telemetry (`reader()`) find none on this store (the rows are in
  ClickHouse); the KQL engine reads ClickHouse through `clickhouse`, and the shared store's
  monitors and map read it there too.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from collector.store import availability, exports, map_rollups, set_aside
from collector.store.clickhouse.location import ClickHouseConnection, ClickHouseLocation
from collector.store.clickhouse.migrate import check_current
from collector.store.clickhouse.retention import ClickHouseRetention
from collector.store.clickhouse.writer import ClickHouseWriter
from collector.store.database import DEFAULT_MAX_PENDING_ROWS, Store
from collector.store.pacing import CHECKPOINT_WAL_BYTES


class ClickHouseStore(Store):
    backend = "clickhouse"

    def __init__(self, data_dir: Path, connection: ClickHouseConnection, memory_limit: str | None = None,
                 max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
                 checkpoint_wal_bytes: int = CHECKPOINT_WAL_BYTES, collector_id: int | None = None):
        # No lookup index: the local file holds no telemetry (its hooks would move to the ClickHouse
        # writer, which never flushes them), and ClickHouse's skip indexes find one request.
        super().__init__(data_dir, memory_limit=memory_limit, max_pending_rows=max_pending_rows,
                         checkpoint_wal_bytes=checkpoint_wal_bytes, keep_lookup_index=False)
        self.clickhouse = connection
        self.local_writer = self.writer
        self.writer = ClickHouseWriter(connection, self.local_writer, max_pending_rows, collector_id)
        self.local_writer.on_fatal = lambda error: self.writer.on_fatal(error)
        # The hooks fed by inserted rows (the map's rollups) now see the ClickHouse inserts.
        self.writer.after_insert.extend(self.local_writer.after_insert)
        self.local_writer.after_insert.clear()
        self.retention = ClickHouseRetention(connection)
        self.exports = _ClickHouseRetentionExports(self.reader, self.local_writer, self.retention)
        self.availability = availability.AvailabilityState(self.reader, self.writer)
        self.set_aside = set_aside.SetAside(self.set_aside.folder, self.reader, self.writer)  # a DuckDB store's, replayed here

    @classmethod
    def open(cls, data_dir: Path, location: ClickHouseLocation, **options) -> ClickHouseStore:
        """The store at `location`, once its schema is known to be current (migrate.check_current)."""
        connection = ClickHouseConnection.at(location)
        check_current(connection)
        return cls(data_dir, connection, **options)

    def close(self) -> None:
        self.writer.close()
        super().close()


class _ClickHouseRetentionExports(exports.ExportState):
    """Export state kept locally, with retention applied to ClickHouse: exporters/retention.py's
    policy (cutoff, which types are guarded) calls `delete_expired` as it does on DuckDB; the
    guard is each guarded table's checkpoint."""

    def __init__(self, reader, writer, retention: ClickHouseRetention):
        super().__init__(reader, writer)
        self._retention = retention

    def delete_expired(self, service: str, tables: list[str], cutoff: datetime, guarded: dict[str, str]) -> int:
        checkpoints = self.checkpoints(service)
        guards = {table: checkpoints[record_type].seq if record_type in checkpoints else 0
                  for table, record_type in guarded.items()}
        deleted = self._retention.delete_expired(service, tables, cutoff, guards)
        if deleted and {"requests", "dependencies"} & set(tables):  # the map's rollups of those hours
            self._commit(lambda con: map_rollups.trim(con, service, cutoff))
        return deleted
