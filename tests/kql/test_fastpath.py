"""The speed rewrites of collector/kql/fastpath.py answer exactly what the translator's SQL does,
and the function bridges of collector/kql/functions.py are still registered where we put them."""

from __future__ import annotations

from datetime import datetime

import duckdb
import duckdb_kql
import pytest
from duckdb_kql.translate import functions as registry
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.kql import fastpath, functions
from collector.kql.compiler import compile_kql

NOW = datetime(2026, 1, 1)


@pytest.fixture(scope="module")
def con():
    connection = duckdb.connect(":memory:")
    connection.execute("SET TimeZone='UTC'")
    connection.execute("CREATE TABLE t (ts TIMESTAMP, d JSON, s VARCHAR, b BOOLEAN)")
    yield connection
    connection.close()


def _both(con, kql: str) -> tuple[list, list]:
    """Rows of the translator's SQL and of our optimized SQL for *kql* over table t."""
    plain = str(duckdb_kql.to_sql(kql, schema={"t": ["ts", "d", "s", "b"]}))
    fast = fastpath.optimize(plain)
    assert fast != plain, "the rewrite did not apply"
    return sorted(con.execute(plain).fetchall(), key=repr), sorted(con.execute(fast).fetchall(), key=repr)


JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.text(alphabet="aInpUt_\n\\\"é -x", max_size=8)),
    lambda inner: st.one_of(st.lists(inner, max_size=3),
                            st.dictionaries(st.text(alphabet="inputaX_ ", max_size=6), inner, max_size=3)),
    max_leaves=6,
)


@settings(max_examples=60, deadline=None)
@given(values=st.lists(JSON_VALUES, min_size=1, max_size=6),
       needle=st.sampled_from(["input", "in", "n", "t", "X_1", "a-b", "é", "u00e9"]))
def test_contains_on_json_is_unchanged(con, values, needle):
    import json

    con.execute("DELETE FROM t")
    for value in values:
        con.execute("INSERT INTO t (d) VALUES (?)", [json.dumps(value)])
    if not all(c.isascii() and (c.isalnum() or c in "_.-") for c in needle):
        return  # outside the fast path's needles: the rewrite must not apply (checked below)
    plain, fast = _both(con, f't | where d contains "{needle}" | project d')
    assert plain == fast


def test_contains_with_other_needles_is_left_alone():
    sql = str(duckdb_kql.to_sql('t | where d contains "a b"', schema={"t": ["ts", "d", "s", "b"]}))
    assert fastpath._CONTAINS_JSON.sub(fastpath._contains_json, sql) == sql


@settings(max_examples=60, deadline=None)
@given(needle=st.text(alphabet="ab'%_\\\" é", max_size=8))
def test_folded_like_pattern_is_the_runtime_one(con, needle):
    literal = "'" + needle.replace("'", "''") + "'"
    runtime = (f"SELECT '%' || replace(replace(replace({literal}, '\\', '\\\\'), '%', '\\%'), "
               "'_', '\\_') || '%'")
    folded = fastpath._RUNTIME_LIKE.sub(fastpath._fold_like, runtime)
    assert folded != runtime
    assert con.execute(folded).fetchall() == con.execute(runtime).fetchall()


FLATTENED = [
    't | where s contains "a" | take 2 | project s',
    't | summarize n = count() by s | top 3 by n',  # 3 of 3 groups: with 2, the tie at n = 1 picked either
    't | extend x = 1 | where b | project-away d',
    't | join kind=leftouter (t | where b) on s | project s, s1',
    'let u = t | where b; u | union (u | take 1)',
    't | as X | join (X) on s | count',
]


@pytest.mark.parametrize("kql", FLATTENED)
def test_flattened_ctes_answer_the_same(con, kql):
    con.execute("DELETE FROM t")
    con.execute("INSERT INTO t (ts, d, s, b) VALUES ('2026-01-01', '{\"a\": 1}', 'a', true), "
                "(NULL, NULL, 'ab', false), ('2026-01-02', '[]', NULL, NULL), (NULL, '1', 'a', true)")
    from collector.kql.rewrite import rewrite

    plain = str(duckdb_kql.to_sql(rewrite(kql).text, schema={"t": ["ts", "d", "s", "b"]}))
    flat = fastpath._flatten_ctes(plain)
    rows = sorted(con.execute(plain).fetchall(), key=repr)
    assert sorted(con.execute(flat).fetchall(), key=repr) == rows


def test_a_cte_read_twice_stays_a_cte():
    sql = "WITH _s0 AS (SELECT 1 AS a), _s1 AS (SELECT * FROM _s0 UNION ALL SELECT * FROM _s0) SELECT * FROM _s1"
    assert fastpath._flatten_ctes(sql) == "WITH _s0 AS (SELECT 1 AS a)\nSELECT * FROM _s0 UNION ALL SELECT * FROM _s0"


@settings(max_examples=40, deadline=None)
@given(micros=st.lists(st.integers(-10**15, 4 * 10**15), min_size=1, max_size=8),
       span=st.sampled_from(["1s", "5m", "1h", "1d", "7d", "90m", "250ms"]))
def test_bin_on_datetimes_is_unchanged(con, micros, span):
    con.execute("DELETE FROM t")
    for value in micros:
        con.execute("INSERT INTO t (ts) VALUES (make_timestamp(?))", [value])
    plain, fast = _both(con, f"t | summarize count() by bin(ts, {span})")
    assert plain == fast


def test_bridges_stay_registered():
    """An upgrade of duckdb-kql that moves its registries must fail here, not drop the bridges."""
    functions.register()
    assert registry.AGGREGATE_FUNCTIONS["minif"].template.startswith("min(")
    assert registry.AGGREGATE_FUNCTIONS["maxif"].template.startswith("max(")
    assert "json_keys" in registry.SCALAR_FUNCTIONS["bag_keys"].template
    import duckdb_kql.translate as translate

    assert translate._SPECIAL_FORMS["round"] is functions._render_round
    assert translate._SPECIAL_FORMS["split"] is functions._render_split
    assert translate._SPECIAL_FORMS["indexof"] is functions._render_indexof
    assert "time_bucket" in compile_kql("requests | summarize count() by bin(timestamp, 5m)", NOW).sql


@pytest.mark.parametrize("predicate", ["b == false", "b == true"])
def test_where_coalesce_is_unchanged(con, predicate):
    con.execute("DELETE FROM t")
    con.execute("INSERT INTO t (ts, s, b) VALUES (NULL, 'a', true), (NULL, NULL, NULL), "
                "('2026-01-01', 'b', false), ('2019-01-01', 'c', NULL)")
    plain, fast = _both(con, f"t | where {predicate} | project s")
    assert plain == fast


def test_where_coalesce_under_not_is_left_alone():
    sql = "SELECT * FROM t WHERE NOT coalesce((s = 'a'), FALSE)"
    assert fastpath.optimize(sql) == sql
