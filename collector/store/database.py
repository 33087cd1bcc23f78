"""The DuckDB file: its tables, the one writer, and read cursors.

The collector is the only process that opens the file. Writes go through `Writer` (one thread,
group commit); reads take a cursor of the same database instance, which sees committed data.
Opening the store makes the data dir private (0700, files 0600, the process umask 077: see
collector/data_dir.py) before DuckDB creates any file in it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

import duckdb

from collector.data_dir import open_private
from collector.store import (
    alerts,
    availability,
    console,
    counters,
    endpoints,
    exports,
    lookup_index,
    map_rollups,
    models,
    monitors,
    services,
    set_aside,
    spool,
)
from collector.store.pacing import CHECKPOINT_WAL_BYTES, checkpoint_wal_bytes_within, hold_rows_within
from collector.store.readers import ReaderPool
from collector.store.schema import SEQUENCE, TABLES
from collector.store.writer import Writer

log = logging.getLogger(__name__)

DB_FILENAME = "telemetry.duckdb"
SPOOL_FOLDER = "ingest.spool"
BLOB_FOLDER = "blob"
SCRUB_LIMIT_BLOCKS = 1024
"""Free blocks (256 KB each) up to which a migration that removed secrets overwrites them all."""
DEFAULT_MAX_PENDING_ROWS = 400_000
"""Rows waiting for the writer beyond which ingestion answers 503 + Retry-After (SDKs keep and
resend)."""

_META_DDL = (
    *services.DDL,
    *console.DDL,
    *counters.DDL,
    *exports.DDL,
    *models.DDL,
    *endpoints.DDL,
    *monitors.DDL,
    *alerts.DDL,
    *availability.DDL,
    *map_rollups.DDL,
    *lookup_index.DDL,
    *spool.DDL,
    *set_aside.DDL,
    f"CREATE SEQUENCE IF NOT EXISTS {SEQUENCE}",
)


class Store:
    backend = "duckdb"
    """Which store this is ("duckdb", or "clickhouse" for clickhouse/store.py's)."""

    def __init__(
        self, data_dir: Path, memory_limit: str | None = None, max_pending_rows: int = DEFAULT_MAX_PENDING_ROWS,
        checkpoint_wal_bytes: int = CHECKPOINT_WAL_BYTES, keep_lookup_index: bool = True, ingest_spool: bool = False,
    ):
        self.data_dir = open_private(Path(data_dir), files=(DB_FILENAME, f"{DB_FILENAME}.wal"),
                                     folders=(f"{DB_FILENAME}.tmp", BLOB_FOLDER, SPOOL_FOLDER))
        self.path = self.data_dir / DB_FILENAME
        self._con = duckdb.connect(str(self.path))
        # Checkpoints are the writer's job (off the ingest path), not a side effect of a commit.
        self._con.execute("SET checkpoint_threshold = '1GB'")
        # The memory all queries (and the writer) may use together; DuckDB's default is 80% of RAM.
        if memory_limit:
            self._con.execute("SET memory_limit = ?", [memory_limit])
        self._create_tables()
        # Before the writer's thread takes the connection (DuckDB refuses a second caller meanwhile).
        self.lookup_index = lookup_index.LookupIndex(self._con, keep=keep_lookup_index)  # indexes a store that has none yet
        self.spool = self._open_spool(ingest_spool)
        limit = self._memory_limit()
        self.writer = Writer(
            self._con, str(self.path) + ".wal", max_pending_rows=max_pending_rows,
            checkpoint_wal_bytes=checkpoint_wal_bytes_within(checkpoint_wal_bytes, limit), journal=self.spool,
            hold_rows=hold_rows_within(limit),
        )
        self.console = console.ConsoleLog(self.reader, self.writer)
        self.exports = exports.ExportState(self.reader, self.writer)
        self.models = models.ModelRegistry(self.reader, self.writer, self.data_dir / models.MODELS_FOLDER)
        self.endpoints = endpoints.EndpointStore(self.reader, self.writer)
        self.collection = services.CollectionSettings(self.reader, self.writer)
        self.monitors = monitors.MonitorState(self.reader, self.writer)
        self.alerts = alerts.AlertState(self.reader, self.writer)
        self.availability = availability.AvailabilityState(self.reader, self.writer)
        self.map_rollups = map_rollups.MapRollups(self.reader)
        self.set_aside = set_aside.SetAside(self.data_dir / SPOOL_FOLDER / spool.REJECTED_FOLDER, self.reader, self.writer)
        self.writer.after_insert.append(self.map_rollups.record)
        if keep_lookup_index:
            self.writer.after_insert.append(self.lookup_index.record)
            self.writer.after_all_inserts.append(self.lookup_index.flush)
            self.writer.after_transaction.append(self.lookup_index.settle)
        self.query_readers = ReaderPool(self._con)
        if self.spool is not None:
            self.writer.start()  # last: the rows it commits first (the spool's) pass through every hook

    def _open_spool(self, wanted: bool) -> spool.Spool | None:
        """The ingest spool (spool.py) when asked for, or when a run that had it left records in it:
        those were acknowledged, and are committed first."""
        folder = self.data_dir / SPOOL_FOLDER
        if not (wanted or any(folder.glob("*.spool"))):
            return None
        return spool.Spool(folder, spool.committed_through(self._con))

    def _memory_limit(self) -> int:
        """DuckDB's memory limit in bytes, as set or by its default (80% of RAM)."""
        (limit,) = self._con.execute("SELECT parse_formatted_bytes(current_setting('memory_limit'))").fetchall()[0]
        return limit

    def _create_tables(self) -> None:
        for ddl in _META_DDL:
            self._con.execute(ddl)
        if services.migrate(self._con):
            # Into the file now: the keys in clear leave the WAL, and their blocks are freed...
            self._con.execute("CHECKPOINT")
            self._overwrite_free_blocks()  # ...and overwritten
        for table in TABLES.values():
            # No index: _seq grows with insertion order, so zone maps already make range scans cheap.
            self._con.execute(table.ddl())
            existing = {row[0] for row in self._con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?", [table.name]).fetchall()}
            for alter in table.added_columns_ddl(existing):
                self._con.execute(alter)

    def _overwrite_free_blocks(self) -> None:
        """DuckDB does not clear the blocks it frees, and reuses them lowest first: a scratch table of
        random values one block larger than the free space, checkpointed and dropped, overwrites
        every free block (the file grows by a block or two at most). Done once, after a migration
        that removed secrets; a file with more free space than SCRUB_LIMIT_BLOCKS is left as it is."""
        free, block_size = self._con.execute(
            "SELECT free_blocks, block_size FROM pragma_database_size() WHERE database_name = current_database()"
        ).fetchall()[0]
        if free > SCRUB_LIMIT_BLOCKS:
            log.warning("%s has %d free blocks; they were not overwritten and may hold what was removed",
                        self.path, free)
            return
        uuids = (free + 1) * block_size // 16  # random UUIDs do not compress: 16 bytes each
        self._con.execute("CREATE TABLE scrub_free_blocks AS SELECT gen_random_uuid() AS filler FROM range(?)", [uuids])
        self._con.execute("CHECKPOINT")
        self._con.execute("DROP TABLE scrub_free_blocks")
        self._con.execute("CHECKPOINT")

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one reading task; never share it between threads. It sees every batch
        acknowledged before (Writer.sync)."""
        self.writer.sync()
        cursor = self._con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def query_reader(self) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A cursor for one KQL query, kept for the next one (readers.py: its prepared plans)."""
        self.writer.sync()
        return self.query_readers.cursor()

    def counters(self, service: str) -> dict[str, int]:
        """Where the service's items went, by counter (see counters.py)."""
        with self.reader() as cursor:
            return counters.totals(cursor, service)

    def close(self) -> None:
        self.query_readers.close()
        self.writer.close()
        if self.spool is not None:
            self.spool.close()
        try:
            self.lookup_index.close(self._con)
        except duckdb.Error:  # e.g. an instance a fatal error invalidated: the next open indexes those rows again
            log.warning("the lookup index's recent entries were not written", exc_info=True)
        try:
            self._con.close()
        except duckdb.Error:  # an instance invalidated by a fatal error may refuse even this
            log.warning("the store did not close cleanly", exc_info=True)
