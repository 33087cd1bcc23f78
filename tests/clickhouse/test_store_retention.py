"""Retention on ClickHouse (collector/store/clickhouse/retention.py) with export's guard, through the
policy DuckDB uses (exporters/retention.py) and the ClickHouse store's export state."""

from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest
from store_helpers import connection, migrated_url

from collector.store.clickhouse.store import ClickHouseStore
from collector.store.exports import BlobRange, Checkpoint, Plan
from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN, TABLES
from exporters.retention import apply_retention
from exporters.settings import ExportSettings

TRACES = TABLES["traces"]
NOW = datetime.now(UTC).replace(tzinfo=None)
GUARD = 1_000
"""The export checkpoint of the traces (Messages) of service `a`: rows at or below it are exported."""


def _insert(conn, rows: list[tuple[str, datetime, int]]) -> None:
    """(service, timestamp, _seq) rows into traces, in one insert."""
    stored = [{"timestamp": int((ts - datetime(1970, 1, 1)) / timedelta(microseconds=1)), "message": f"m{seq}",
               "itemType": "trace", SERVICE_COLUMN: service} for service, ts, seq in rows]
    table = TRACES.to_arrow(stored).append_column(SEQ_COLUMN, pa.array([seq for _, _, seq in rows], pa.int64()))
    conn.client().insert_arrow("traces", table, database=conn.database)


@pytest.fixture
def store(clickhouse_server, tmp_path):
    conn = connection(clickhouse_server, migrated_url(clickhouse_server, "retention"))
    store = ClickHouseStore(tmp_path / "data", conn)
    yield store, conn
    store.close()


def _seqs(conn, service: str) -> list[int]:
    return sorted(row[0] for row in conn.client().query(
        f"SELECT _seq FROM {conn.database}.traces WHERE _service = {{s:String}}", parameters={"s": service}).result_rows)


def _parts(conn, at: datetime) -> int:
    """Active parts of the day partition that holds `at` (named by the rows' own stamp: NOW minus
    whole days and an hour falls on the day before in the first hour after midnight)."""
    day = at.strftime("%Y%m%d")
    return conn.client().query(
        "SELECT count() FROM system.parts WHERE database = {db:String} AND table = 'traces' AND active "
        "AND partition_id = {p:String}", parameters={"db": conn.database, "p": day}).result_rows[0][0]


def test_store_retention_drops_whole_parts_deletes_rows_and_keeps_what_is_not_exported(store):
    clickhouse, conn = store
    old, mixed, late, recent = (NOW - timedelta(days=d, hours=1) for d in (20, 19, 18, 1))
    _insert(conn, [("a", old, seq) for seq in range(1, 101)])                   # a's alone: exported, expired
    _insert(conn, [(s, mixed, seq) for s in ("a", "b") for seq in range(101, 151)])  # shared with b
    _insert(conn, [("a", late, seq) for seq in (900, GUARD + 1, GUARD + 2)])     # two arrived after the checkpoint
    _insert(conn, [("a", recent, seq) for seq in range(2000, 2010)])             # within retention
    checkpoint = Plan(BlobRange(1, GUARD, GUARD), "blob-1")
    clickhouse.exports.plan("a", "Messages", Checkpoint(), checkpoint)
    clickhouse.exports.advance("a", "Messages", checkpoint, GUARD)
    assert _parts(conn, old) == 1

    deleted = apply_retention(clickhouse.exports, "a", ExportSettings(retention_days=7, types=["Messages"]))

    assert deleted == 100 + 50 + 1
    assert _seqs(conn, "a") == [GUARD + 1, GUARD + 2] + list(range(2000, 2010))  # never exported: kept
    assert _seqs(conn, "b") == list(range(101, 151))  # another service's rows in a shared part: untouched
    assert _parts(conn, old) == 0  # the part that held only a's expired, exported rows was dropped whole
    assert apply_retention(clickhouse.exports, "a", ExportSettings(retention_days=7, types=["Messages"])) == 0


def test_store_retention_without_export_goes_by_age_and_drops_a_part_once_its_last_service_expires(store):
    clickhouse, conn = store
    mixed = NOW - timedelta(days=30)
    _insert(conn, [(s, mixed, seq) for s in ("a", "b") for seq in range(1, 21)])
    off = ExportSettings(retention_days=7, enabled=False)
    assert apply_retention(clickhouse.exports, "a", off) == 20  # rows of a deleted in place
    assert _parts(conn, mixed) == 1
    assert apply_retention(clickhouse.exports, "b", off) == 20  # b's were the last: the part goes
    assert _parts(conn, mixed) == 0
    assert _seqs(conn, "a") == _seqs(conn, "b") == []
