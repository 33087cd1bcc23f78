"""The lookup index's recent entries, held in memory and written as sorted runs
(lookup_memory.Recent, LookupIndex.flush/settle), keep lookups equal to the full scan at every
commit a reader sees: while memory fills, when a run is written, when a reader's snapshot is older
than the run that memory let go, when the process holds no memory of the store, when a group fails
after writing its run, after a process ends without closing the store, and after an earlier
version's layout is moved into a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from collector.kql import engine, lookup, run_query
from collector.store import lookup_index, lookup_memory
from collector.store.database import DB_FILENAME, Store
from collector.store.schema import TABLES

SERVICE = "svc-a"
ROOT = Path(__file__).resolve().parents[2]


def _ids(n: int) -> list[str]:
    return [f"op{n:04d}{j}abcdef{n * 7 + j:06d}" for j in range(2)]


def _rows(n: int, now: datetime) -> list[dict]:
    """Two requests; those of every third batch 40 days old, for retention to delete."""
    when = now - timedelta(days=40) if n % 3 == 1 else now
    return [{"timestamp": int(when.timestamp() * 1e6), "operation_Id": op, "_service": SERVICE,
             "itemType": "request", "customDimensions": f'{{"x-request-id": "rq{op}"}}'} for op in _ids(n)]


def _write(store: Store, n: int, now: datetime) -> None:
    """Rows committed to DuckDB (with the ingest spool on, not only answered): the index follows commits."""
    store.writer.write(tables={"requests": TABLES["requests"].to_arrow(_rows(n, now))}).result()
    store.writer.sync()


def _memory(store: Store) -> Counter:
    return Counter(entry for hashes, numbers, seqs in store.lookup_index.recent.chunks
                   for entry in zip(hashes.tolist(), numbers.tolist(), seqs.tolist(), strict=True))


def _entries(store: Store) -> tuple[Counter, Counter, Counter]:
    """(the runs' entries, memory's, those the reference statement makes of the rows there now)."""
    every = " UNION ALL ".join(lookup_index.terms_sql(name, f'"{name}"') for name in lookup_index.INDEXED)
    with store.reader() as con:
        runs = Counter(con.execute("SELECT h, t, seq FROM lookup_terms").fetchall())
        return runs, _memory(store), Counter(con.execute(every).fetchall())


def _found(con: duckdb.DuckDBPyConnection, operation: str) -> tuple[list, list, str]:
    """(the narrowed answer, the full scan's, the narrowed SQL), read by `con`."""
    kql = f'requests | where operation_Id == "{operation}" | project operation_Id, timestamp'
    narrowed = run_query(con, kql, services=[SERVICE])
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engine.lookup, "narrowed", lambda scope, *_: scope)
        full = run_query(con, kql, services=[SERVICE])
    assert '"_seq" IN (' in narrowed.sql or " AND FALSE" in narrowed.sql or '"_seq" >' in narrowed.sql
    return sorted(map(repr, narrowed.rows)), sorted(map(repr, full.rows)), narrowed.sql


def _assert_exact(store: Store, operations: list[str]) -> None:
    with store.reader() as con:
        for operation in operations:
            narrowed, full, _ = _found(con, operation)
            assert narrowed == full


def test_runs_and_memory_keep_every_entry_and_lookups_exact(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 10)
    store = Store(tmp_path / "data")
    now = datetime.now(UTC).replace(tzinfo=None)
    runs_written = deleted = 0
    try:
        for n in range(16):
            before = store.lookup_index.recent.through
            _write(store, n, now)
            runs_written += store.lookup_index.recent.through != before
            if n in (7, 12):
                deleted += store.exports.delete_expired(SERVICE, ["requests"], now - timedelta(days=30), {})
            runs, memory, wanted = _entries(store)
            assert set(runs) | set(memory) >= set(wanted) and sum(wanted.values()) > 0
            assert len(memory) < 10 + 8  # let go once written (at most a group's entries past RUN_ROWS)
            _assert_exact(store, [_ids(1)[1], _ids(n)[0], _ids(n // 2)[1]])
        assert runs_written >= 3 and deleted > 0
        with store.reader() as con:
            hashes = [h for (h,) in con.execute("SELECT h FROM lookup_terms ORDER BY rowid").fetchall()]
        descents = sum(1 for a, b in zip(hashes, hashes[1:], strict=False) if b >> 48 < a >> 48)
        assert descents < runs_written  # each run in hash order (by the top bits): it falls only where a run begins
    finally:
        store.close()


def test_a_reader_older_than_a_run_that_memory_let_go_reads_the_rows_after_its_runs(tmp_path, monkeypatch):
    """The race the unindexed range is for: a query's snapshot starts, then the writer commits a
    run and memory lets its entries go, then the query asks the index (here, in that order, by
    writing from inside the query's probe: the snapshot is fixed by its first statement)."""
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 10)
    store = Store(tmp_path / "data")
    now = datetime.now(UTC).replace(tzinfo=None)
    real = lookup.candidates
    seen: list[int] = []

    def after_a_run_the_snapshot_misses(con, tables, terms):
        con.execute("SELECT count(*) FROM requests").fetchall()  # the snapshot starts here
        seen.append(store.lookup_index.recent.through)
        for n in range(1, 4):
            _write(store, n, now)
        return real(con, tables, terms)

    try:
        _write(store, 0, now)
        monkeypatch.setattr(lookup, "candidates", after_a_run_the_snapshot_misses)
        with store.reader() as con:
            narrowed, full, sql = _found(con, _ids(0)[1])
        through = seen[0]
        assert store.lookup_index.recent.through > through  # memory let the first rows' entries go
        assert len(full) == 1 and narrowed == full and f'"_seq" > {through} AND' in sql
        monkeypatch.setattr(lookup, "candidates", real)
        with store.reader() as con:
            narrowed, full, sql = _found(con, _ids(0)[1])
        assert len(full) == 1 and narrowed == full and '"_seq" >' not in sql
    finally:
        store.close()


def test_a_process_without_the_stores_memory_reads_the_rows_after_the_runs(tmp_path, monkeypatch):
    """Another process reading the file has no memory of it; here this process, forgetting its
    own (the same branch of `candidates`: no memory under the store's token)."""
    store = Store(tmp_path / "data")
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        for n in range(3):
            _write(store, n, now)
        monkeypatch.setattr(lookup_memory, "_OPEN", {})
        with store.reader() as con:
            narrowed, full, sql = _found(con, _ids(2)[1])
        assert len(full) == 1 and narrowed == full and '"_seq" >' in sql
    finally:
        store.close()


def test_a_group_that_fails_after_writing_its_run_keeps_memory(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 6)
    store = Store(tmp_path / "data")
    now = datetime.now(UTC).replace(tzinfo=None)
    failed: list[int] = []

    def fail_when_a_run_is_written(con) -> None:
        if not failed and store.lookup_index._written_through is not None:
            failed.append(1)
            raise RuntimeError("a group that fails after the index wrote its run")

    store.writer.after_all_inserts.append(fail_when_a_run_is_written)
    try:
        n = 0
        while not failed:
            try:
                _write(store, n, now)
            except Exception as error:
                assert "could not commit" in str(error)
            n += 1
        runs, memory, _ = _entries(store)
        assert not runs and len(memory) >= 6  # the run went back with its group; memory kept its entries
        _assert_exact(store, [_ids(0)[0], _ids(n - 2)[1]])
        _write(store, n, now)
        runs, memory, wanted = _entries(store)
        assert runs and not memory and set(runs) >= set(wanted)
        _assert_exact(store, [_ids(0)[0], _ids(n - 2)[1], _ids(n)[0]])
    finally:
        store.close()


def test_a_process_that_ends_without_closing_the_store_loses_no_entry(tmp_path):
    data = tmp_path / "data"
    script = textwrap.dedent(f"""
        import os, sys
        sys.path.insert(0, {str(ROOT)!r}); sys.path.insert(0, {str(ROOT / 'tests' / 'kql')!r})
        from datetime import UTC, datetime
        from collector.store.database import Store
        from test_lookup_recent import _write
        store = Store({str(data)!r})
        now = datetime.now(UTC).replace(tzinfo=None)
        for n in range(5):
            _write(store, n, now)
        assert store.lookup_index.recent.count > 0
        os._exit(0)  # no close: the entries were in memory only
    """)
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    store = Store(data)
    try:
        runs, memory, wanted = _entries(store)
        assert runs == wanted and not memory  # made again from the rows at open
        _assert_exact(store, [_ids(0)[0], _ids(4)[1]])
    finally:
        store.close()


def test_closing_writes_memory_as_a_run(tmp_path):
    store = Store(tmp_path / "data")
    now = datetime.now(UTC).replace(tzinfo=None)
    for n in range(3):
        _write(store, n, now)
    _, memory, wanted = _entries(store)
    assert memory == wanted
    store.close()
    with duckdb.connect(str(tmp_path / "data" / DB_FILENAME)) as con:
        runs = Counter(con.execute("SELECT h, t, seq FROM lookup_terms").fetchall())
        through = con.execute("SELECT value FROM lookup_state WHERE key = 'indexed_through'").fetchall()[0][0]
        last = con.execute('SELECT max("_seq") FROM requests').fetchall()[0][0]
    assert runs == wanted and through == last


def test_an_earlier_layout_is_moved_into_a_run(tmp_path):
    """Earlier versions kept the entries not yet in a run in `lookup_recent` and `lookup_sealed`."""
    data = tmp_path / "data"
    store = Store(data)
    now = datetime.now(UTC).replace(tzinfo=None)
    for n in range(4):
        _write(store, n, now)
    store.close()
    with duckdb.connect(str(data / DB_FILENAME)) as con:
        for name in lookup_index.EARLIER_TABLES:
            con.execute(f"CREATE TABLE {name} (h UBIGINT NOT NULL, t UTINYINT NOT NULL, seq BIGINT NOT NULL)")
        con.execute("INSERT INTO lookup_sealed SELECT * FROM lookup_terms WHERE seq % 2 = 0")
        con.execute("INSERT INTO lookup_recent SELECT * FROM lookup_terms WHERE seq % 2 = 1")
        con.execute("DELETE FROM lookup_terms")
        con.execute("DELETE FROM lookup_state WHERE key = 'indexed_through'")
    store = Store(data)
    try:
        runs, memory, wanted = _entries(store)
        assert runs == wanted and not memory
        with store.reader() as con:
            assert not lookup_index._earlier_tables(con)
        _assert_exact(store, [_ids(0)[0], _ids(3)[1]])
    finally:
        store.close()
