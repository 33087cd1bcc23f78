"""The writer builds a group while the previous one commits (store/writer.py): what it must keep.

Real stores on real DuckDB files; batches are queued without waiting, as the collector's requests
queue them under load, so that groups follow each other while commits are in flight."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import threading
import time

import pytest

from collector.store import map_rollups
from collector.store.database import Store
from collector.store.schema import TABLES
from collector.store.writer import Writer

ROWS = 500
BATCHES = 40


def _requests(batch: int, at: datetime) -> dict:
    stamp = int(at.timestamp() * 1_000_000)
    rows = [{"timestamp": stamp + i, "id": f"r{batch}-{i}", "name": "POST /score", "success": True,
             "resultCode": "200", "duration": 1.0, "cloud_RoleName": "front", "_service": "svc"}
            for i in range(ROWS)]
    return {"requests": TABLES["requests"].to_arrow(rows)}


@pytest.fixture
def slow_commits(monkeypatch):
    """Each COMMIT starts 50 ms late, so that the next group is surely built while it is in flight
    (the committer's thread is the writer's own design; the delay only widens the window)."""
    commit = Writer._commit

    def late(self, *args):
        time.sleep(0.05)
        return commit(self, *args)
    monkeypatch.setattr(Writer, "_commit", late)


def _built_beside_a_commit(store: Store) -> list[bool]:
    """Records, per group, whether it was built while a commit was in flight."""
    seen: list[bool] = []
    store.writer.after_all_inserts.append(lambda con: seen.append(not store.writer.exclusive))
    return seen


def test_groups_are_built_beside_commits_and_every_row_lands_once_in_seq_order(tmp_path, slow_commits):
    store = Store(tmp_path)
    beside = _built_beside_a_commit(store)
    now = datetime.now(UTC).replace(tzinfo=None)
    futures = [store.writer.write(_requests(n, now)) for n in range(BATCHES)]
    for future in futures:
        future.result()
    with store.reader() as cursor:
        ids, seqs = zip(*cursor.execute('SELECT id, "_seq" FROM requests ORDER BY "_seq"').fetchall(), strict=True)
    store.close()
    assert any(beside), "no group was built while another committed"
    assert len(ids) == len(set(ids)) == ROWS * BATCHES
    assert len(set(seqs)) == len(seqs)
    assert [int(i.split("-")[0][1:]) for i in ids] == sorted(int(i.split("-")[0][1:]) for i in ids)  # batches in queue order


def test_an_operation_waits_for_the_commit_in_flight(tmp_path, slow_commits):
    """An operation (a service change, retention, an import's check) may update rows and read what
    earlier groups wrote: its group is built once no commit is in flight, with every earlier group's
    rows in its snapshot."""
    store = Store(tmp_path)
    now = datetime.now(UTC).replace(tzinfo=None)
    seen = []
    for round_ in range(5):
        for n in range(BATCHES // 5):
            store.writer.write(_requests(round_ * 100 + n, now))
        seen.append(store.writer.write(operation=lambda con: (
            store.writer.exclusive, con.execute("SELECT count(*) FROM requests").fetchone()[0])))
    answers = [future.result() for future in seen]
    store.close()
    assert all(exclusive for exclusive, _ in answers)
    counts = [count for _, count in answers]
    assert counts == sorted(counts)


def test_a_rollup_flush_waits_for_the_commit_in_flight(tmp_path, monkeypatch):
    """A rollup flush reads the rows up to the highest `_seq` inserted and moves its mark past them:
    built beside a commit in flight it would miss that commit's rows for good. The first group's
    COMMIT is held until the second group has been waiting for it (or half a second), and the flush
    falls due between the two."""
    held = threading.Event()
    commit = Writer._commit

    def held_commit(self, *args):
        held.wait(0.5)
        return commit(self, *args)
    monkeypatch.setattr(Writer, "_commit", held_commit)
    monkeypatch.setattr(map_rollups, "FLUSH_SECONDS", 3600.0)
    store = Store(tmp_path)
    store.map_rollups._flushed_at = time.monotonic()  # no flush due in the first group
    built = threading.Event()
    store.writer.after_all_inserts.append(lambda con: built.set())
    now = datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=5)
    first = store.writer.write(_requests(0, now))
    assert built.wait(10)
    store.map_rollups._flushed_at = float("-inf")  # due from the second group on
    second = store.writer.write(_requests(1, now))
    first.result()
    second.result()
    with store.reader() as cursor:
        rolled = cursor.execute("SELECT sum(requests) FROM map_node_hours").fetchone()[0]
    store.close()
    assert rolled == 2 * ROWS
