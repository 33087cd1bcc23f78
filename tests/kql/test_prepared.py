"""A reused plan runs as a statement prepared on its connection (collector/kql/prepared.py): the
answers are those of the plain SQL on every run, follow the data and the catalog as they change
(rows written, a column added, a table recreated), and a connection keeps a bounded number; the
store lends KQL queries the same cursor query after query (collector/store/readers.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from collector.kql import KqlError, prepared, run_query
from collector.kql.clickhouse.execute import query_connection
from collector.store.database import Store
from collector.store.schema import TABLES

from .store import build

KQL = 'traces | where customDimensions contains "input" | limit 10'


def _ask(cursor, text: str, **options):
    """run_query with time to spare: the first query of a process starts the compile workers,
    which took over 30 s on the shared cores."""
    return run_query(cursor, text, timeout_s=600, **options)


@pytest.fixture()
def con():
    connection = build()
    yield connection
    connection.close()


def _statements(cursor) -> int:
    return cursor.execute("SELECT count(*) FROM duckdb_prepared_statements()").fetchone()[0]


def test_a_repeated_query_is_prepared_once_and_answers_as_the_first_run(con):
    cursor = con.cursor()
    first = _ask(cursor, KQL, services=["a"])
    assert [row[1] for row in first.rows] == ["STDOUT"]
    again = [_ask(cursor, KQL, services=["a"]) for _ in range(4)]
    assert all(r.rows == first.rows and r.columns == first.columns for r in again)
    assert prepared.prepared_count(cursor) == 1 and _statements(cursor) == 1
    # Another cursor of the same database has none of them: a statement is its connection's.
    other = con.cursor()
    assert _ask(other, KQL, services=["a"]).rows == first.rows
    assert prepared.prepared_count(other) == 0 and _statements(other) == 0


def test_a_prepared_query_sees_new_rows_a_new_column_and_a_recreated_table(con):
    cursor = con.cursor()
    for _ in range(3):
        _ask(cursor, KQL, services=["a"])
    assert prepared.prepared_count(cursor) == 1
    con.execute("INSERT INTO traces (timestamp, message, customDimensions, itemType, itemCount, _service, _seq) "
                "VALUES ('2026-01-02', 'later', '{\"input\": 1}', 'trace', 1, 'a', 10)")
    assert sorted(r[1] for r in _ask(cursor, KQL, services=["a"]).rows) == ["STDOUT", "later"]
    con.execute("ALTER TABLE traces ADD COLUMN extra VARCHAR")
    assert sorted(r[1] for r in _ask(cursor, KQL, services=["a"]).rows) == ["STDOUT", "later"]
    con.execute("DROP TABLE traces")
    con.execute(TABLES["traces"].ddl())
    con.execute("INSERT INTO traces (timestamp, message, customDimensions, itemType, itemCount, _service, _seq) "
                "VALUES ('2026-01-03', 'recreated', '{\"input\": 2}', 'trace', 1, 'a', 1)")
    answer = _ask(cursor, KQL, services=["a"])
    assert [r[1] for r in answer.rows] == ["recreated"]
    assert answer.rows == _ask(con.cursor(), KQL, services=["a"]).rows  # a fresh cursor, no statement


def test_a_connection_keeps_at_most_its_share_of_statements(con):
    cursor = con.cursor()
    texts = [f"requests | where duration > {n} | project id" for n in range(prepared.PER_CONNECTION + 6)]
    for text in texts:
        for _ in range(2):
            _ask(cursor, text, services=["a"])
    assert prepared.prepared_count(cursor) == prepared.PER_CONNECTION == _statements(cursor)
    expected = sorted(r[0] for r in con.execute("SELECT id FROM requests WHERE _service = 'a' AND duration > 2")
                      .fetchall())
    assert sorted(r[0] for r in _ask(cursor, texts[2], services=["a"]).rows) == expected  # evicted, rerun


def test_a_query_whose_sql_changes_between_runs_is_not_prepared(con):
    cursor = con.cursor()
    for _ in range(3):
        _ask(cursor, KQL, services=["a"], timespan="P3650D")
        _ask(cursor, "traces | where timestamp > ago(3650d) | count", services=["a"])
    assert prepared.prepared_count(cursor) == 0 and _statements(cursor) == 0


def _write_traces(store, messages: list[str]) -> None:
    now = int(datetime.now(UTC).timestamp() * 1e6)
    rows = [{"timestamp": now, "message": m, "customDimensions": '{"input": 1}', "_service": "a",
             "itemType": "trace"} for m in messages]
    store.writer.write(tables={"traces": TABLES["traces"].to_arrow(rows)}).result()


def test_the_store_lends_one_cursor_query_after_query_and_keeps_its_plans(tmp_path):
    store = Store(tmp_path / "data")
    try:
        _write_traces(store, ["one"])
        seen = []
        for _ in range(3):
            with query_connection(store) as cursor:
                seen.append(cursor)
                answer = _ask(cursor, KQL, services=["a"])
        assert len({id(c) for c in seen}) == 1 and prepared.prepared_count(seen[0]) == 1
        _write_traces(store, ["two"])  # committed by the writer after the plan was prepared
        with query_connection(store) as cursor:
            assert sorted(r[1] for r in _ask(cursor, KQL, services=["a"]).rows) == ["one", "two"]
        assert [r[1] for r in answer.rows] == ["one"]
        # A query that failed gives back no cursor: it is closed (it may have been interrupted).
        with pytest.raises(KqlError), query_connection(store) as cursor:
            _ask(cursor, "traces | where nosuch == 1", services=["a"])
        assert store.query_readers.idle() == 0
        # A result cut at the row cap is ended before its cursor goes back: the cursor answers again.
        _write_traces(store, [f"m{i}" for i in range(5)])
        with query_connection(store) as cursor:
            assert _ask(cursor, "traces | project message", services=["a"], max_rows=2).truncated
        with query_connection(store) as again:
            assert again is cursor and len(_ask(again, "traces | project message", services=["a"]).rows) == 7
    finally:
        store.close()
    assert store.query_readers.idle() == 0
    reopened = Store(tmp_path / "data")  # every cursor closed: the file opens again
    try:
        with query_connection(reopened) as cursor:
            assert len(_ask(cursor, KQL, services=["a"]).rows) == 7
    finally:
        reopened.close()


def test_a_prepared_plan_is_planned_again_once_it_is_old(con, monkeypatch):
    cursor = con.cursor()
    for _ in range(3):
        _ask(cursor, KQL, services=["a"])
    before = cursor.execute("SELECT name FROM duckdb_prepared_statements()").fetchall()
    monkeypatch.setattr(prepared, "MAX_AGE_S", 0.0)
    answer = _ask(cursor, KQL, services=["a"])
    after = cursor.execute("SELECT name FROM duckdb_prepared_statements()").fetchall()
    assert len(before) == len(after) == 1 and before != after and prepared.prepared_count(cursor) == 1
    assert [r[1] for r in answer.rows] == ["STDOUT"]
