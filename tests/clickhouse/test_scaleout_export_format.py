"""Export's NDJSON from the ClickHouse store is the DuckDB store's, row for row: the same rows stored in
both (DuckDB in memory, ClickHouse through the stand-in) and written by each store's export state."""

from __future__ import annotations

import sys
import uuid
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa

from collector.ingest.rows import prepare_rows
from collector.store.clickhouse.exports import ExportState
from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.clickhouse.migrate import migrate
from collector.store.clickhouse.retention import ClickHouseRetention
from collector.store.exports import BlobRange, write_ndjson
from collector.store.schema import SEQ_COLUMN, TABLES

sys.path.insert(0, str(Path(__file__).parents[1] / "export"))
from items import lines, mixed_items  # noqa: E402


def test_scaleout_clickhouse_export_writes_the_duckdb_row_format(clickhouse_server, tmp_path):
    connection = ClickHouseConnection(clickhouse_server.client, f"fmt_{uuid.uuid4().hex[:8]}")
    migrate(connection)
    prepared = prepare_rows(b"\n".join(lines(mixed_items(120, seed=5))), "svc")
    con = duckdb.connect()
    for table in TABLES.values():
        con.execute(table.ddl())
    state = ExportState(connection, ClickHouseRetention(connection), horizon_lag_s=0)
    assert prepared.tables and not prepared.errors
    for name, rows in prepared.tables.items():
        stored = rows.append_column(SEQ_COLUMN, pa.array(range(1, rows.num_rows + 1), pa.int64()))  # noqa: F841
        con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM stored')
        connection.client().insert_arrow(name, stored, database=connection.database)
        span = BlobRange(1, rows.num_rows, rows.num_rows)
        assert state.next_range(TABLES[name], "svc", 0, 1000) == span
        assert write_ndjson(con, TABLES[name], "svc", span, tmp_path / f"{name}.duckdb.json") == rows.num_rows
        assert state.write_ndjson(TABLES[name], "svc", span, tmp_path / f"{name}.clickhouse.json") == rows.num_rows
        expected = [orjson.loads(line) for line in (tmp_path / f"{name}.duckdb.json").read_bytes().splitlines()]
        written = [orjson.loads(line) for line in (tmp_path / f"{name}.clickhouse.json").read_bytes().splitlines()]
        assert written == expected, name
