"""The ingestion sequence (`_seq`) that export checkpoints on is never handed out twice, even when
the rows that carried the highest numbers are deleted and the store is reopened; and the per-service
counters, appended with each commit, fold without losing a count."""

import re
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

from collector.ingest.item_ids import item_ids
from collector.store.database import Store
from collector.store.schema import TABLES


def _traces(count: int) -> dict:
    rows = [{"timestamp": 1_795_452_862_000_000 + i, "message": f"m{i}", "_service": "svc"} for i in range(count)]
    return {"traces": TABLES["traces"].to_arrow(rows)}


def _seqs(store: Store) -> list[int]:
    with store.reader() as cursor:
        return [row[0] for row in cursor.execute("SELECT _seq FROM traces ORDER BY _seq").fetchall()]


def test_sequence_survives_deleting_the_newest_rows_and_a_restart(tmp_path):
    store = Store(tmp_path)
    store.writer.write(_traces(5)).result()
    assert _seqs(store) == [1, 2, 3, 4, 5]
    store.writer.write(operation=lambda con: con.execute("DELETE FROM traces WHERE _seq > 2")).result()
    store.close()

    reopened = Store(tmp_path)
    reopened.writer.write(_traces(2)).result()
    kept, new = _seqs(reopened)[:2], _seqs(reopened)[2:]
    assert kept == [1, 2] and new[0] > 5 and new[1] == new[0] + 1  # a new block of the writer's
    reopened.close()


def test_sequence_survives_a_crash_of_the_process_that_drew_its_block(tmp_path):
    """A block of `_seq` values is drawn once and handed out from memory (writer.SEQ_BLOCK): after
    a kill, nothing checkpointed, the WAL alone must keep the reopened store off those numbers."""
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_sequence import _traces
        from collector.store.database import Store
        store = Store({str(tmp_path)!r})
        for _ in range(3):
            store.writer.write(_traces(4)).result()
        os._exit(0)  # no close, no checkpoint: as kill -9 leaves it
    """)
    subprocess.run([sys.executable, "-c", script], check=True, cwd=Path(__file__).parents[2])
    reopened = Store(tmp_path)
    before = _seqs(reopened)
    assert before == list(range(1, 13))
    reopened.writer.write(_traces(3)).result()
    after = _seqs(reopened)[12:]
    assert min(after) > 12 and len(set(after)) == 3
    reopened.close()


def test_item_ids_are_guid_shaped_and_unique_across_batches():
    first, second = item_ids(), item_ids()
    ids = [next(first) for _ in range(1000)] + [next(second) for _ in range(1000)]
    assert len(set(ids)) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", i) for i in ids)


def test_counters_fold_into_one_row_each_when_idle_and_keep_their_sums(tmp_path):
    store = Store(tmp_path)
    for _ in range(1_200):  # more increments than counters.COMPACT_ROWS
        store.writer.write(_traces(1), Counter({("svc", "accepted"): 1})).result()
    deadline = time.monotonic() + 15  # the writer compacts once its queue has been idle for a while
    while True:
        with store.reader() as cursor:
            rows = cursor.execute("SELECT service, counter, value FROM service_counters").fetchall()
        if len(rows) == 1 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert rows == [("svc", "accepted", 1_200)]
    store.close()
