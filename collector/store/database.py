"""The DuckDB file: its tables, the one writer, and read cursors.

The collector is the only process that opens the file. Writes go through `Writer` (one thread,
group commit); reads take a cursor of the same database instance, which sees committed data.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import duckdb

from collector.store.schema import TABLES
from collector.store.writer import Writer

DB_FILENAME = "telemetry.duckdb"

_META_DDL = (
    """CREATE TABLE IF NOT EXISTS services (
        name VARCHAR PRIMARY KEY,
        instrumentation_key VARCHAR NOT NULL UNIQUE,
        api_key VARCHAR NOT NULL UNIQUE,
        enable_app_insights BOOLEAN NOT NULL DEFAULT TRUE,
        created_at TIMESTAMP NOT NULL,
        settings JSON
    )""",
    """CREATE TABLE IF NOT EXISTS service_stats (
        service VARCHAR NOT NULL,
        counter VARCHAR NOT NULL,
        value BIGINT NOT NULL,
        PRIMARY KEY (service, counter)
    )""",
)


class Store:
    def __init__(self, data_dir: Path):
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.data_dir / DB_FILENAME
        self._con = duckdb.connect(str(self.path))
        # Checkpoints are the writer's job (off the ingest path), not a side effect of a commit.
        self._con.execute("SET checkpoint_threshold = '1GB'")
        self._create_tables()
        self.writer = Writer(self._con, str(self.path) + ".wal")

    def _create_tables(self) -> None:
        for ddl in _META_DDL:
            self._con.execute(ddl)
        for table in TABLES.values():
            # No index: _seq grows with insertion order, so zone maps already make range scans cheap.
            self._con.execute(table.ddl())

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor for one reading task; never share it between threads."""
        cursor = self._con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def close(self) -> None:
        self.writer.close()
        self._con.close()
