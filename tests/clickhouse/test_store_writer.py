"""The ClickHouse writer (collector/store/clickhouse/writer.py) against the stand-in, through the real
client: it acknowledges only what ClickHouse holds, refuses with Overloaded what it cannot store,
and two writers make distinct `_seq` values without talking to each other."""

from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from store_helpers import connection, migrated_url

from collector.store.clickhouse.location import ClickHouseConnection, parse
from collector.store.clickhouse.writer import (
    COUNTER_BITS,
    EPOCH_MS,
    ClickHouseWriter,
    SeqClock,
    horizon,
    seq_time_ms,
)
from collector.store.database import Store
from collector.store.schema import SERVICE_COLUMN, TABLES
from collector.store.writer import Overloaded

TRACES = TABLES["traces"]


def _traces(service: str, count: int, start_us: int = 1_780_000_000_000_000):
    rows = [{"timestamp": start_us + i, "message": f"m{i}", "itemType": "trace", "itemId": f"{service}-{i}",
             SERVICE_COLUMN: service} for i in range(count)]
    return {TRACES.name: TRACES.to_arrow(rows)}


@pytest.fixture
def local(tmp_path):
    store = Store(tmp_path / "data")  # the control state a ClickHouse store keeps in DuckDB
    yield store
    store.close()


@pytest.fixture(scope="module")
def conn(clickhouse_server):
    return connection(clickhouse_server, migrated_url(clickhouse_server, "writer"))


def _count(conn, service: str) -> int:
    return conn.client().query("SELECT count() FROM traces WHERE _service = {s:String}",
                               parameters={"s": service}).result_rows[0][0]


def test_store_writer_acks_only_rows_clickhouse_holds_and_counts_them_locally(conn, local):
    writer = ClickHouseWriter(conn, local.writer, max_pending_rows=10_000)
    try:
        futures = [writer.write(_traces(f"ack-{i}", 50), Counter({(f"ack-{i}", "accepted"): 50})) for i in range(8)]
        for i, future in enumerate(futures):
            future.result(timeout=60)
            assert _count(conn, f"ack-{i}") == 50  # readable the moment the write is acknowledged
        assert local.counters("ack-3") == {"accepted": 50}
    finally:
        writer.close()


def test_store_writer_runs_operations_in_the_local_store(conn, local):
    writer = ClickHouseWriter(conn, local.writer, max_pending_rows=10_000)
    try:
        assert writer.write(operation=lambda con: con.execute("SELECT 41 + 1").fetchone()[0]).result(timeout=30) == 42
        assert writer.write(_traces("op", 3), operation=lambda con: "done").result(timeout=60) == "done"
    finally:
        writer.close()


def test_store_writer_refuses_what_it_cannot_store(clickhouse_server, local):
    unreachable = parse("clickhouse://insights@127.0.0.1:1/insights?compress=false")
    writer = ClickHouseWriter(ClickHouseConnection.at(unreachable), local.writer, max_pending_rows=100)
    try:
        with pytest.raises(Overloaded):
            writer.write(_traces("down", 200))  # beyond max_pending_rows: refused at once
        with pytest.raises(Overloaded):
            writer.write(_traces("down", 10)).result(timeout=60)  # ClickHouse unreachable: 503, never an ack
        assert local.counters("down") == {}
    finally:
        writer.close()


def test_store_seq_unique_across_two_writers(conn, local, tmp_path):
    other = Store(tmp_path / "other")
    writers = [ClickHouseWriter(conn, local.writer, 100_000, collector_id=1),
               ClickHouseWriter(conn, other.writer, 100_000, collector_id=2)]
    try:
        with ThreadPoolExecutor(8) as pool:
            futures = [pool.submit(lambda i=i: writers[i % 2].write(_traces("seq", 700, i * 1000)).result(timeout=120))
                       for i in range(24)]
            for future in futures:
                future.result()
        seqs = [row[0] for row in conn.client().query("SELECT _seq FROM traces WHERE _service = 'seq'").result_rows]
        assert len(seqs) == 24 * 700 == len(set(seqs))
        assert {(seq >> COUNTER_BITS) & 0xFFF for seq in seqs} == {1, 2}
        assert max(seqs) < horizon(lag_s=-60)  # assigned before now + 60 s
    finally:
        for writer in writers:
            writer.close()
        other.close()


def test_store_seq_clock_never_repeats_or_goes_back_when_the_clock_does():
    now = [EPOCH_MS + 1_000]
    clock = SeqClock(5, now_ms=lambda: now[0])
    first = clock.take(1000).to_pylist()  # two milliseconds' worth: borrows the next one
    now[0] -= 500  # the wall clock steps back
    second = clock.take(10).to_pylist()
    values = first + second
    assert values == sorted(values) and len(set(values)) == len(values)
    assert seq_time_ms(first[0]) == EPOCH_MS + 1_000 and seq_time_ms(first[-1]) == EPOCH_MS + 1_001
    assert all((value >> COUNTER_BITS) & 0xFFF == 5 for value in values)
    assert horizon(lag_s=0, now_ms=EPOCH_MS + 1_000) == first[0] - (5 << COUNTER_BITS)
    with pytest.raises(ValueError):
        SeqClock(4096)
