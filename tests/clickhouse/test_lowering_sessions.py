"""row_window_session on the clickhouse store (collector/kql/clickhouse/sessions.py): the translator's
DuckDB SQL lowered and run on ClickHouse's engine in process (chdb), each row's session start held
to the DuckDB UDF's own walk (series_math.session_starts) over the rows in the order they came out:
with nulls, restarts, gaps and rows that tie in the serialize order (whose order is the engine's
choice, so the walk must agree with the order it chose). Over sessions.MAX_ROWS rows the query is refused
when it runs."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pytest
from store_helpers import lowered_rows

from collector.kql.clickhouse import sessions
from collector.kql.clickhouse.lowering import lower
from collector.kql.compiler import compile_kql
from collector.kql.series_math import session_starts

_EPOCH = datetime(1970, 1, 1)
_BASE = datetime(2026, 1, 1)


def _micros(value: datetime | None) -> int | None:
    return None if value is None else (value.replace(tzinfo=None) - _EPOCH) // timedelta(microseconds=1)


def _sql(kql: str) -> str:
    return compile_kql(kql, datetime(2026, 1, 2)).sql


def _rows(seed: int, count: int) -> list[tuple[int, datetime | None, bool]]:
    """(serialize key with ties, a time or null, restart) rows."""
    rng = random.Random(seed)
    rows, at = [], _BASE
    for _ in range(count):
        at += timedelta(seconds=rng.choice([0, 30, 61, 150, 200, 400]), microseconds=rng.randrange(1000))
        rows.append((rng.randrange(count // 2 + 1), None if rng.random() < 0.15 else at, rng.random() < 0.1))
    return rows


def _datatable(rows: list[tuple[int, datetime | None, bool]]) -> str:
    cells = ", ".join(f"{k}, datetime({'null' if t is None else t.strftime('%Y-%m-%d %H:%M:%S.%f')}), "
                      f"{str(r).lower()}" for k, t, r in rows)
    return f"datatable(k:long, t:datetime, r:bool)[{cells}]"


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_session_starts_follow_the_walk_in_the_order_the_rows_come_out(client, seed):
    rows = _rows(seed, 60)
    kql = (f"{_datatable(rows)} | order by k asc | extend s = row_window_session(t, 5m, 3m, r) "
           "| project k, t, r, s")
    got = lowered_rows(client, _sql(kql))
    assert sorted((k, r) for k, _, r, _ in got) == sorted((k, r) for k, _, r in rows)
    assert [k for k, *_ in got] == sorted(k for k, *_ in got)  # the serialize order kept
    walked = session_starts([_micros(t) for _, t, _, _ in got], 300_000_000, 180_000_000, [r for _, _, r, _ in got])
    assert [_micros(s) for *_, s in got] == walked
    assert any(s is None for *_, s in got) and len(set(walked)) > 3  # nulls and several sessions met


def test_two_calls_in_one_query_walk_each_their_own_values(client):
    rows = [(i, _BASE + timedelta(minutes=2 * i), i == 3) for i in range(8)]
    kql = (f"{_datatable(rows)} | order by k asc | extend a = row_window_session(t, 5m, 3m), "
           "b = row_window_session(t, 1h, 1h, r) | project k, a, b")
    got = lowered_rows(client, _sql(kql))
    assert [(k, _micros(a), _micros(b)) for k, a, b in got] == [
        (k, a, b) for k, a, b in zip(range(8), session_starts([_micros(t) for _, t, _ in rows], 300_000_000, 180_000_000),
                                     session_starts([_micros(t) for _, t, _ in rows], 3_600_000_000, 3_600_000_000,
                                                    [r for *_, r in rows]), strict=True)]


def test_the_ordered_stage_is_read_once():
    lowered = lower(_sql("requests | order by timestamp asc | extend s = row_window_session(timestamp, 5m, 3m)"), {},
                    database="default", services=None)
    assert "_rw_p AS MATERIALIZED (" in lowered.sql
    assert lowered.settings["enable_materialized_cte"] == 1
    assert "enable_materialized_cte" not in lower(_sql("requests | take 1"), {}, database="default", services=None).settings


def test_more_rows_than_the_walk_takes_are_refused_when_the_query_runs(client, monkeypatch):
    """The limit lowered to 6 rows here (a query text of its own, so no cached lowering is reused):
    the guard, not the size, is what is tested."""
    monkeypatch.setattr(sessions, "MAX_ROWS", 6)
    rows = [(i, _BASE + timedelta(seconds=7 * i), False) for i in range(7)]
    kql = "{} | order by k asc | extend s = row_window_session(t, 7m, 7m) | count"
    with pytest.raises(Exception, match="kql-unsupported: row_window_session over more than 6 rows"):
        lowered_rows(client, _sql(kql.format(_datatable(rows))))
    assert lowered_rows(client, _sql(kql.format(_datatable(rows[:6])))) == [(6,)]
