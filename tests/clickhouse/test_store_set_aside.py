"""Batches a DuckDB store set aside, replayed by a ClickHouse store opened on the same data dir (a
team that moved to ClickHouse keeps what the old store refused): the rows go into ClickHouse, the
replay is recorded in the local control state, and a batch ClickHouse refuses too stays set aside.
The refusal that went away is tests/spool_batches.py's hook (not on the ClickHouse store)."""

from loader import ITEMS_PER_BATCH
from spool_batches import set_aside_two
from store_helpers import connection, migrated_url

from collector.store.clickhouse.store import ClickHouseStore


def test_a_clickhouse_store_replays_what_a_duckdb_store_set_aside(clickhouse_server, tmp_path, monkeypatch):
    set_aside_two(tmp_path / "data", tmp_path, monkeypatch)
    conn = connection(clickhouse_server, migrated_url(clickhouse_server, "set_aside"))
    store = ClickHouseStore(tmp_path / "data", conn)
    try:
        assert [batch["record"] for batch in store.set_aside.batches()] == [2, 4]
        answer = store.set_aside.replay()
        assert (answer["replayed"], answer["items"], [r["record"] for r in answer["refused"]]) == (1, ITEMS_PER_BATCH, [4])
        held = dict(conn.client().query(
            "SELECT operation_Id, count() FROM (SELECT operation_Id FROM traces UNION ALL SELECT operation_Id FROM requests "
            "UNION ALL SELECT operation_Id FROM dependencies UNION ALL SELECT operation_Id FROM exceptions "
            "UNION ALL SELECT operation_Id FROM customMetrics) GROUP BY operation_Id").result_rows)
        assert held == {"op1": ITEMS_PER_BATCH}  # op0 and op2 went into the DuckDB store before the move
        assert store.set_aside.replay()["replayed"] == 0
        assert [batch["record"] for batch in store.set_aside.batches()] == [4]
        assert store.counters("bench")["set_aside"] == 1
    finally:
        store.close()
