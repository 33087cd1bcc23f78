"""tdigest, tdigest_merge and percentile_tdigest on the clickhouse store (collector/kql/clickhouse/
digests.py): the translator's DuckDB SQL, run on DuckDB with its UDF (the oracle) and lowered to
ClickHouse SQL on chdb, over groups of every size around the digest's 1001 steps (1, 2, 3, 7, 10,
999 to 1001, 2,500 values: the ranks where ceil(n * i / 1000) is exact on DuckDB and would not be in
floating point), with duplicates, negatives and reals. Every pick, count and percentile must be
exactly the same (the picks are values of the input, the percentile the same float operations)."""

from __future__ import annotations

import json

import duckdb
import pytest
from store_helpers import lowered_rows

from collector.kql.digests import aggregate_sql
from collector.kql.series_functions import ensure_registered

_SIZES = (1, 2, 3, 7, 10, 999, 1000, 1001, 2500)


def _values(kind: str) -> str:
    """A source of (g, x) rows: group g holds _SIZES[g] values, spread and repeated by a modular
    step (the same on both engines), halves and quarters for the reals."""
    bounds, total = [], 0
    for g, size in enumerate(_SIZES):
        total += size
        bounds.append(f"WHEN i < {total} THEN {g}")
    value = "(i * 7919) % 1013 - 300"
    x = f"CAST({value} AS BIGINT)" if kind == "BIGINT" else f"CAST({value} AS DOUBLE) / 4.0"
    return (f"(SELECT CASE {' '.join(bounds)} END AS g, {x} AS x FROM generate_series(CAST(0 AS BIGINT), "
            f"CAST({total - 1} AS BIGINT), CAST(1 AS BIGINT)) AS _range(i))")


def _digests_sql(kind: str) -> str:
    return f"SELECT g, {aggregate_sql('x')} AS d FROM {_values(kind)} GROUP BY g"


@pytest.fixture(scope="module")
def duck():
    con = duckdb.connect()
    ensure_registered(con)
    yield con
    con.close()


def _both(duck, client, sql: str) -> tuple[list, list]:
    expected = sorted(tuple(r) for r in duck.execute(sql).fetchall())
    got = sorted(tuple(r) for r in lowered_rows(client, sql))
    return expected, got


@pytest.mark.parametrize("kind", ["DOUBLE", "BIGINT"])
def test_tdigest_writes_duckdbs_digest_text(duck, client, kind):
    expected, got = _both(duck, client, _digests_sql(kind))
    assert len(got) == len(_SIZES)
    assert got == expected  # the same JSON text: count and all 1001 picks


def test_tdigest_of_no_value_is_an_empty_digest(duck, client):
    sql = f"SELECT {aggregate_sql('x')} AS d FROM (VALUES (CAST(1.5 AS DOUBLE))) AS v(x) WHERE x > 2"
    expected, got = _both(duck, client, sql)
    assert got == expected == [('{"n":0,"q":null}',)]


_MERGE = "kql_compute('tdigest_merge', CAST(to_json(list(d)) AS VARCHAR), NULL)"


@pytest.mark.parametrize("groups", [1, 2, 4], ids=["one digest", "pairs", "quads"])
def test_tdigest_merge_answers_as_the_udf(duck, client, groups):
    sql = f"SELECT g % {len(_SIZES) // groups + 1} AS h, {_MERGE} AS m FROM ({_digests_sql('DOUBLE')}) GROUP BY h"
    expected, got = _both(duck, client, sql)
    assert [(h, json.loads(m)) for h, m in got] == [(h, json.loads(m)) for h, m in expected]
    assert any(json.loads(m)["n"] > 1000 for _, m in got)


def test_tdigest_merge_of_no_digest(duck, client):
    """No row: null; rows but no digest (nulls, non-digests, empty digests): the empty digest."""
    sql = f"SELECT {_MERGE} AS m FROM ({_digests_sql('DOUBLE')}) WHERE g > 100"
    expected, got = _both(duck, client, sql)
    assert got == expected == [(None,)]
    sql = (f"SELECT {_MERGE} AS m FROM (SELECT CAST(NULL AS JSON) AS d UNION ALL SELECT CAST('{{\"a\": 1}}' AS JSON) "
           f"UNION ALL SELECT {aggregate_sql('x')} FROM (SELECT CAST(1.5 AS DOUBLE) AS x) WHERE x > 2)")
    expected, got = _both(duck, client, sql)
    assert [json.loads(m) for (m,) in got] == [json.loads(m) for (m,) in expected] == [{"n": 0, "q": None}]


_POINTS = [0, 0.05, 30, 33.3, 50, 95, 99.9, 100, -1, 100.5]


def test_percentile_tdigest_answers_as_the_udf(duck, client):
    reads = ", ".join(f"CAST(kql_compute('percentile_tdigest', CAST(m AS VARCHAR), CAST(json_array(CAST({p!r} AS DOUBLE)) "
                      f"AS VARCHAR)) AS DOUBLE) AS p{i}" for i, p in enumerate(_POINTS))
    sql = f"SELECT h, {reads} FROM (SELECT g % 3 AS h, {_MERGE} AS m FROM ({_digests_sql('DOUBLE')}) GROUP BY h)"
    expected, got = _both(duck, client, sql)
    assert got == expected
    assert all(row[-1] is None and row[-2] is None and row[1] is not None for row in got)


def test_percentile_tdigest_of_a_non_digest_is_null_and_of_whole_picks_refused(client):
    read = ("CAST(kql_compute('percentile_tdigest', CAST(m AS VARCHAR), CAST(json_array(CAST(50 AS BIGINT)) AS VARCHAR)) "
            "AS DOUBLE)")
    assert lowered_rows(client, f"SELECT {read} FROM (SELECT CAST('{{\"a\": 1}}' AS JSON) AS m)") == [(None,)]
    whole = json.dumps({"n": 1, "q": list(range(1001))})
    with pytest.raises(Exception, match="kql-unsupported: a digest holding more than reals"):
        lowered_rows(client, f"SELECT {read} FROM (SELECT CAST('{whole}' AS JSON) AS m)")
