"""The ingest spool: a batch is answered once spooled, committed to DuckDB later in larger groups,
seen by every query after its answer, and committed exactly once after a crash.

Real files, a real Store on a DuckDB file, real processes for the crash (os._exit without close)."""

import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from loader import ITEMS_PER_BATCH
from spool_batches import FOREVER_REFUSED, FOREVER_REFUSED_COUNTS, prepared, stored

from collector.store import pacing, spool, writer
from collector.store.database import SPOOL_FOLDER, Store

ROOT = Path(__file__).parent.parent.parent


def test_records_come_back_equal_after_the_committed_mark(tmp_path):
    batches = prepared(tmp_path, 3)
    journal = spool.Spool(tmp_path / "spool", through=0)
    numbers = [journal.append(batch.tables, batch.stats) for batch in batches]
    journal.sync()
    journal.close()
    assert numbers == [1, 2, 3]

    reopened = spool.Spool(tmp_path / "spool", through=1)  # DuckDB holds record 1 already
    pending = list(reopened.pending())
    assert [number for number, _, _ in pending] == [2, 3]
    for (_, tables, stats), batch in zip(pending, batches[1:]):
        assert set(tables) == set(batch.tables)
        assert all(tables[name].equals(table) for name, table in batch.tables.items())
        assert stats == batch.stats
    assert reopened.last == 3
    assert reopened.append(batches[0].tables, batches[0].stats) == 4


def test_a_record_cut_short_by_a_crash_is_dropped_and_the_segment_cut(tmp_path):
    batch = prepared(tmp_path, 1)[0]
    journal = spool.Spool(tmp_path / "spool", through=0)
    journal.append(batch.tables, batch.stats)
    journal.append(batch.tables, batch.stats)
    journal.sync()
    journal.close()
    (segment,) = (tmp_path / "spool").glob("*.spool")
    whole = segment.stat().st_size
    with open(segment, "ab") as file:  # the next record's first bytes, its fsync never returned
        file.write(spool.HEADER.pack(3, 10_000, 0) + b"\x00" * 100)

    reopened = spool.Spool(tmp_path / "spool", through=0)
    assert [number for number, _, _ in reopened.pending()] == [1, 2]
    assert segment.stat().st_size == whole


def test_committed_segments_are_deleted_and_the_current_one_kept(tmp_path, monkeypatch):
    monkeypatch.setattr(spool, "SEGMENT_BYTES", 1)  # every record starts a segment
    batch = prepared(tmp_path, 1)[0]
    journal = spool.Spool(tmp_path / "spool", through=0)
    for _ in range(4):
        journal.append(batch.tables, batch.stats)
    journal.sync()
    assert len(list((tmp_path / "spool").glob("*.spool"))) == 4
    journal.release(through=2)
    assert sorted(int(p.stem) for p in (tmp_path / "spool").glob("*.spool")) == [3, 4]
    journal.release(through=4)
    assert sorted(int(p.stem) for p in (tmp_path / "spool").glob("*.spool")) == [4]  # being written


def test_a_query_sees_every_batch_answered_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pacing, "HOLD_SECONDS", 60.0)  # the writer would hold them for a minute
    batches = prepared(tmp_path, 4)
    store = Store(tmp_path / "data", ingest_spool=True)
    try:
        for batch in batches:
            store.writer.write(batch.tables, batch.stats).result(timeout=30)
        assert stored(store) == {f"op{n}": ITEMS_PER_BATCH for n in range(4)}
        assert store.counters("bench")["accepted"] == 4 * ITEMS_PER_BATCH
    finally:
        store.close()


def test_an_operation_runs_after_the_rows_answered_before_it(tmp_path, monkeypatch):
    monkeypatch.setattr(pacing, "HOLD_SECONDS", 60.0)
    batch = prepared(tmp_path, 1)[0]
    store = Store(tmp_path / "data", ingest_spool=True)
    try:
        store.writer.write(batch.tables, batch.stats).result(timeout=30)
        ids = batch.tables["requests"].column("itemId").to_pylist()
        held = store.writer.held_item_ids("bench", {"requests": ids}).result(timeout=30)
        assert set(held["requests"]) == set(ids)
    finally:
        store.close()


@pytest.mark.parametrize("batches", [1, 12])
def test_answered_batches_are_committed_exactly_once_after_a_crash(tmp_path, batches):
    """A process answers batches (spooled, held: the writer waits a minute before committing),
    then dies without closing; the next open commits them, once, and a third open adds nothing."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / 'tests')!r}]
        from pathlib import Path
        from loader import batch_body
        from collector.ingest.prepare import prepare_body
        from collector.store import pacing
        pacing.HOLD_SECONDS = 60.0
        pacing.HOLD_ROWS = 10**9
        from collector.store.database import Store
        folder = Path({str(tmp_path)!r})
        store = Store(folder / "data", ingest_spool=True)
        for n in range({batches}):
            batch = prepare_body(batch_body("bench", f"op{{n}}", n), "gzip", {{"bench": ("bench", True)}}, folder)
            store.writer.write(batch.tables, batch.stats).result(timeout=30)
        os._exit(0)
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert list((tmp_path / "data" / SPOOL_FOLDER).glob("*.spool"))
    with duckdb.connect(str(tmp_path / "data" / "telemetry.duckdb"), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM traces").fetchone() == (0,)  # answered, in the spool alone

    expected = {f"op{n}": ITEMS_PER_BATCH for n in range(batches)}
    for _ in range(2):  # opened without asking for the spool: the records it holds are committed all the same
        store = Store(tmp_path / "data")
        try:
            assert stored(store) == expected
            assert store.counters("bench")["accepted"] == batches * ITEMS_PER_BATCH
        finally:
            store.close()


def test_a_spool_that_cannot_be_written_answers_503_and_keeps_nothing(tmp_path, monkeypatch):
    batch = prepared(tmp_path, 1)[0]
    store = Store(tmp_path / "data", ingest_spool=True)
    try:
        def full(*args):
            raise OSError(28, "No space left on device")

        monkeypatch.setattr(store.spool, "sync", full)
        with pytest.raises(writer.Overloaded):
            store.writer.write(batch.tables, batch.stats).result(timeout=30)
        monkeypatch.undo()
        store.writer.write(batch.tables, batch.stats).result(timeout=30)
        assert stored(store) == {"op0": ITEMS_PER_BATCH}
    finally:
        store.close()


def test_only_batches_of_rows_alone_are_answered_from_the_spool():
    """A batch with an operation is answered after its commit (the operation's result is the
    answer); an empty one (a sync) has nothing to keep."""
    assert not writer.Batch({}).spoolable
    assert not writer.Batch({"traces": pa.table({"x": [1]})}, operation=lambda con: None).spoolable
    assert writer.Batch({"traces": pa.table({"x": [1]})}).spoolable


def test_under_a_memory_limit_the_wal_is_checkpointed_within_a_quarter_of_it(tmp_path):
    """Rows committed and not yet checkpointed stay in DuckDB's memory: under a 40 MB limit the
    writer checkpoints before the WAL passes 10 MB, not at the 256 MB it allows without one."""
    batches = prepared(tmp_path, 8)
    store = Store(tmp_path / "data", memory_limit="40MB")
    wal = store.path.with_name(store.path.name + ".wal")
    largest = 0
    try:
        for _ in range(12):
            for batch in batches:
                store.writer.write(batch.tables, batch.stats).result(timeout=30)
            largest = max(largest, wal.stat().st_size if wal.exists() else 0)
        assert sum(stored(store).values()) == 12 * 8 * ITEMS_PER_BATCH
    finally:
        store.close()
    assert 0 < largest < 10 * 2**20 + 4 * 2**20  # a limit/4 threshold, plus the group that passed it


def test_a_batch_the_store_refuses_is_set_aside_and_the_others_go_in(tmp_path, monkeypatch):
    """An acknowledged batch DuckDB will never take (here a timestamp it cannot read: the pipeline
    never hands over such a thing, so the test builds it) would hold every batch after it in the
    spool; once refused for HELD_REFUSED_SECONDS, each held batch goes alone, the refused one is kept
    in `rejected/`, and ingestion goes on."""
    monkeypatch.setattr(pacing, "HOLD_SECONDS", 60.0)  # all three held, then committed together
    monkeypatch.setattr(pacing, "HELD_REFUSED_SECONDS", 0.0)
    good = prepared(tmp_path, 3)
    store = Store(tmp_path / "data", ingest_spool=True)
    try:
        store.writer.write(good[0].tables, good[0].stats).result(timeout=30)
        store.writer.write(FOREVER_REFUSED, FOREVER_REFUSED_COUNTS).result(timeout=30)  # answered: it is in the spool
        store.writer.write(good[1].tables, good[1].stats).result(timeout=30)
        assert stored(store) == {"op0": ITEMS_PER_BATCH, "op1": ITEMS_PER_BATCH}
        store.writer.write(good[2].tables, good[2].stats).result(timeout=30)
        assert stored(store)["op2"] == ITEMS_PER_BATCH
        (kept,) = store.set_aside.batches()
        assert (kept["record"], kept["rows"], kept["items"]) == (2, {"requests": 1}, {"bench": 1})
        assert "not a time" in kept["reason"]
        counts = store.counters("bench")  # received = accepted + set_aside, as the stats API shows
        assert (counts["accepted"], counts["set_aside"]) == (3 * ITEMS_PER_BATCH, 1)
        assert counts["received"] == 3 * ITEMS_PER_BATCH + 1
    finally:
        store.close()
    reopened = Store(tmp_path / "data", ingest_spool=True)  # the mark passed it: not tried again
    try:
        assert stored(reopened) == {f"op{n}": ITEMS_PER_BATCH for n in range(3)}
    finally:
        reopened.close()
