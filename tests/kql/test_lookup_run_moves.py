"""The lookup index's move of its recent entries into a sorted run, a hash slice per group commit
(lookup_index.RunMove), keeps lookups equal to the full scan at every commit a reader sees, and
keeps the entries the reference statement makes: none missing at any commit (the copied ones twice
while their run is half copied), exactly them once it is done, the deleted rows' entries forgotten
by retention even mid-move, each run sorted by hash, and a restart mid-move resuming it."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest

from collector.kql import engine, run_query
from collector.store import lookup_index
from collector.store.database import Store
from collector.store.schema import TABLES

SERVICE = "svc-a"


def _ids(n: int) -> list[str]:
    return [f"op{n:04d}{j}abcdef{n * 7 + j:06d}" for j in range(2)]


def _rows(n: int, now: datetime) -> list[dict]:
    """Two requests; those of every third batch 40 days old, for retention to delete."""
    when = now - timedelta(days=40) if n % 3 == 1 else now
    return [{"timestamp": int(when.timestamp() * 1e6), "operation_Id": op, "_service": SERVICE,
             "itemType": "request", "customDimensions": f'{{"x-request-id": "rq{op}"}}'} for op in _ids(n)]


def _entries(store: Store) -> tuple[Counter, Counter]:
    """(the index's entries, those the reference statement makes of the rows there now)."""
    every = " UNION ALL ".join(lookup_index.terms_sql(name, f'"{name}"') for name in lookup_index.INDEXED)
    with store.reader() as con:
        kept = con.execute(" UNION ALL ".join(f"SELECT h, t, seq FROM {table}" for table in lookup_index.INDEX_TABLES)).fetchall()
        return Counter(kept), Counter(con.execute(every).fetchall())


def _found(store: Store, operation: str) -> tuple[list, list]:
    kql = f'requests | where operation_Id == "{operation}" | project operation_Id, timestamp'
    with store.reader() as con:
        narrowed = run_query(con, kql, services=[SERVICE])
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(engine.lookup, "narrowed", lambda scope, *_: scope)
            full = run_query(con, kql, services=[SERVICE])
    assert '"_seq" IN (' in narrowed.sql or " AND FALSE" in narrowed.sql  # narrowed (to none: deleted)
    return narrowed.rows, full.rows


def test_moves_keep_every_entry_once_and_lookups_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 10)
    monkeypatch.setattr(lookup_index, "MOVE_ROWS", 3)
    seals = []
    real_seal = lookup_index.seal
    monkeypatch.setattr(lookup_index, "seal", lambda con, entries: seals.append(real_seal(con, entries)) or seals[-1])
    store = Store(tmp_path / "data")
    now = datetime.now(UTC).replace(tzinfo=None)
    seen_moving = deleted = 0
    try:
        for n in range(16):
            store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(n, now))}).result()
            if store.lookup_index._moving is not None:
                seen_moving += 1
                if n in (7, 12):  # retention in the middle of a move
                    deleted += store.exports.delete_expired(SERVICE, ["requests"], now - timedelta(days=30), {})
            kept, wanted = _entries(store)
            assert set(kept) == set(wanted) and sum(kept.values()) > 0
            if store.lookup_index._moving is None:
                assert kept == wanted
            for operation in (_ids(1)[1], _ids(n)[0], _ids(n // 2)[1]):
                narrowed, full = _found(store, operation)
                assert sorted(map(repr, narrowed)) == sorted(map(repr, full))
        assert seen_moving >= 4 and deleted > 0 and len(seals) >= 2
        assert all(move.steps > 1 for move in seals)
        with store.reader() as con:
            hashes = [h for (h,) in con.execute("SELECT h FROM lookup_terms ORDER BY rowid").fetchall()]
        descents = sum(1 for a, b in zip(hashes, hashes[1:], strict=False) if b < a)
        assert descents < len(seals)  # each run is sorted: the hash falls only where a run begins
    finally:
        store.close()


def test_a_restart_in_the_middle_of_a_move_loses_nothing(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 8)
    monkeypatch.setattr(lookup_index, "MOVE_ROWS", 2)
    now = datetime.now(UTC).replace(tzinfo=None)
    store = Store(tmp_path / "data")
    n = 0
    while store.lookup_index._moving is None or store.lookup_index._moving.done < 2:
        store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(n, now))}).result()
        n += 1
    left = store.lookup_index._moving
    store.close()
    store = Store(tmp_path / "data")
    try:
        assert store.lookup_index._moving == left
        more = n
        while store.lookup_index._moving is not None and more < n + 40:
            store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(more, now))}).result()
            kept, wanted = _entries(store)
            assert set(kept) == set(wanted)
            more += 1
        assert store.lookup_index._moving is None and kept == wanted  # each entry copied once
        for operation in (_ids(0)[0], _ids(n - 1)[1], _ids(more - 1)[0]):
            narrowed, full = _found(store, operation)
            assert len(full) == 1 and sorted(map(repr, narrowed)) == sorted(map(repr, full))
    finally:
        store.close()


def test_a_group_that_fails_after_its_slice_loses_no_entry(tmp_path, monkeypatch):
    """A group rolled back after the index copied its slice (here: a hook after it raises) takes
    the slice back with it; the next group copies that slice again rather than skipping it."""
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 8)
    monkeypatch.setattr(lookup_index, "MOVE_ROWS", 2)
    now = datetime.now(UTC).replace(tzinfo=None)
    store = Store(tmp_path / "data")
    failed: list[int] = []

    def fail_once(con) -> None:
        if not failed:
            failed.append(1)
            raise RuntimeError("a group that fails after the index's slice")

    try:
        n = 0
        while store.lookup_index._moving is None or store.lookup_index._moving.done < 1:
            store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(n, now))}).result()
            n += 1
        store.writer.after_all_inserts.append(fail_once)
        with pytest.raises(Exception, match="could not commit"):
            store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(n, now))}).result()
        more = n + 1
        while store.lookup_index._moving is not None and more < n + 40:
            store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(more, now))}).result()
            more += 1
        kept, wanted = _entries(store)
        assert failed and store.lookup_index._moving is None and kept == wanted
        for operation in (_ids(0)[0], _ids(n - 1)[1], _ids(more - 1)[0]):
            narrowed, full = _found(store, operation)
            assert len(full) == 1 and sorted(map(repr, narrowed)) == sorted(map(repr, full))
    finally:
        store.close()
