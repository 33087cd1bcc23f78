"""The rules that let the clickhouse store answer what it used to refuse: the Python UDFs (hash(),
the series functions), parse's named groups, dynamic literals, the string guards and the reals of
a series. Each is lowered from the DuckDB SQL the translator writes and run on ClickHouse's engine
in process (chdb); the series functions are held to the DuckDB UDF's own answers
(collector/kql/series_functions.py) on series with nulls, reals, whole reals, strings and bags."""

from __future__ import annotations

import json
import random

import pytest
from store_helpers import lowered_rows, quoted, udf_answers

from collector.kql import KqlError, run_query
from collector.kql.clickhouse.lowering import lower
from collector.kql.errors import UNSUPPORTED
from collector.kql.results import _json_dynamic
from collector.kql.xxhash import kusto_hash
from collector.store.clickhouse.location import ClickHouseConnection


def test_hash_is_kustos_xxhash64(client):
    words = ["World", "", "é ü 漢字", "a" * 100, "the quick brown fox jumps over the lazy dog"]
    selects = " UNION ALL ".join(
        f"SELECT {i} AS k, kql_xxhash64(CAST({quoted(w)} AS VARCHAR), NULL) AS h, "
        f"kql_xxhash64(CAST({quoted(w)} AS VARCHAR), CAST(100 AS BIGINT)) AS m" for i, w in enumerate(words))
    rows = sorted(lowered_rows(client, f"SELECT * FROM ({selects}) ORDER BY k"))
    assert rows[0][1] == 1846988464401551951  # the docs' hash("World")
    assert [(h, m) for _, h, m in rows] == [(kusto_hash(w, None), kusto_hash(w, 100)) for w in words]
    assert lowered_rows(client, "SELECT kql_xxhash64(CAST(NULL AS VARCHAR), NULL)") == [(None,)]
    computed = ("SELECT kql_xxhash64(CAST('World' AS VARCHAR), m) FROM (SELECT CAST(NULL AS BIGINT) AS m "
                "UNION ALL SELECT CAST(-3 AS BIGINT) UNION ALL SELECT CAST(7 AS BIGINT)) AS t")
    assert sorted(lowered_rows(client, computed), key=str) == sorted(
        [(kusto_hash("World", None),), (kusto_hash("World", -3),), (kusto_hash("World", 7),)], key=str)


_SERIES = ["[null,1,null,4,null]", "[10.5,100.0,null,1.0,40.0,null]", "[1,2,3,4,5,6,7,8,9,10,100]", "[]",
           "[null,null]", '[1,"x",true,2.5,-3]', '{"a":1}', "null", "[7]", "[2,2,2]"]
_CALLS = [("series_fill_forward", None), ("series_fill_backward", None), ("series_fill_const", [0]),
          ("series_fill_const", [-1.5]), ("series_fill_linear", None), ("series_fill_linear", [None, False]),
          ("series_fill_linear", [None, False, 7]), ("series_outliers", None),
          ("series_outliers", ["ctukey", None, 5, 95])]


def _random_series(rnd: random.Random) -> str:
    items = [None if rnd.random() < 0.2 else
             rnd.choice([rnd.randint(-50, 50), round(rnd.uniform(-100, 100), rnd.randint(0, 6)), float(rnd.randint(-5, 5))])
             for _ in range(rnd.randint(1, 12))]
    return json.dumps(items)


def _compare(client, name: str, options: list | None, series: list[str]) -> None:
    got, expected = udf_answers(client, name, options, series)
    normal = [None if v is None else _json_dynamic(v) for v in expected]
    assert [None if v is None else _json_dynamic(v) for v in got] == normal, (name, options)


@pytest.mark.parametrize(("name", "options"), _CALLS, ids=[f"{n}{o or ''}" for n, o in _CALLS])
def test_series_functions_answer_as_the_duckdb_udf(client, name, options):
    rnd = random.Random(name + json.dumps(options))
    _compare(client, name, options, _SERIES + [_random_series(rnd) for _ in range(8)])


@pytest.mark.parametrize("options", [[[1, 1, 1, 1, 1], False], [[1, 1, 1], True, True], [[1, -2, 1]], [[0, 3]]])
def test_series_fir_answers_as_the_duckdb_udf_over_whole_numbers(client, options):
    series = ["[0,1,2,3,4,5,6,7,8,9]", "[null,5,-3,2]", "[1]", '[4,"x",true,2]', '{"a":1}']
    _compare(client, "series_fir", options, series)


def _connection(client) -> ClickHouseConnection:
    return ClickHouseConnection(lambda: client, "default")


def test_series_fir_over_fractions_is_refused_when_it_runs(client):
    with pytest.raises(KqlError) as caught:
        run_query(_connection(client), "print f = series_fir(dynamic([0.5, 1]), dynamic([1, 1]))", services=None)
    assert caught.value.code == UNSUPPORTED and "not supported on the clickhouse store" in str(caught.value)


def test_series_fir_with_fractional_taps_is_refused():
    with pytest.raises(KqlError) as caught:
        run_query(_connection(None), "print f = series_fir(dynamic([1, 2]), dynamic([0.5, 0.5]))", services=None)
    assert caught.value.code == UNSUPPORTED


def test_series_fir_with_a_computed_filter_is_refused_when_it_runs(client):
    with pytest.raises(KqlError) as caught:
        run_query(_connection(client), "print x = dynamic([1, 2]) | project f = series_fir(x, x)", services=None)
    assert caught.value.code == UNSUPPORTED and "series_fir with a computed filter" in str(caught.value)


def test_a_series_of_bags_is_refused_when_it_runs(client):
    with pytest.raises(KqlError) as caught:
        run_query(_connection(client), 'print f = series_fill_forward(dynamic([1, {"a": 2}]))', services=None)
    assert caught.value.code == UNSUPPORTED


def test_named_groups_are_the_tuple_of_their_numbered_groups(client):
    sql = ("SELECT _parse.b, _parse.a FROM (SELECT regexp_extract(s, '(x)?(?P<a>[0-9]+)-(?P<b>[a-z]+)', ['a', 'b']) "
           "AS _parse FROM (SELECT '12-ab' AS s UNION ALL SELECT 'none' AS s) AS t) AS p")
    assert sorted(lowered_rows(client, sql)) == [("", ""), ("ab", "12")]


def test_a_named_group_missing_from_its_pattern_is_refused():
    with pytest.raises(KqlError) as caught:
        lower("SELECT regexp_extract(s, '(?P<a>.*)', ['a', 'b']) AS _parse FROM t", {}, database="d", services=None)
    assert caught.value.code == UNSUPPORTED


def test_string_guards_stay_strings_and_still_refuse_long_values(client):
    guarded = ("SELECT regexp_extract(CASE WHEN strlen(s) > 4 THEN error('kql-limit: too long') ELSE concat(s, '!') "
               "END, '(?P<w>[a-z]+)', ['w']) AS _parse FROM (SELECT CAST({} AS VARCHAR) AS s) AS t")
    assert lowered_rows(client, f"SELECT _parse.w FROM ({guarded.format(quoted('ab'))}) AS p") == [("ab",)]
    with pytest.raises(Exception, match="kql-limit: too long"):
        lowered_rows(client, f"SELECT _parse.w FROM ({guarded.format(quoted('abcdef'))}) AS p")


def test_dynamic_literals_are_their_json_text(client):
    assert lowered_rows(client, "SELECT CAST('[1, 2]' AS JSON), CAST('{\"a\": [1]}' AS JSON)") == [("[1, 2]", '{"a": [1]}')]


def test_whole_reals_in_a_series_keep_their_point(client):
    sql = ("SELECT to_json(list(v ORDER BY i)) FROM (SELECT * FROM (VALUES (1, CAST(100.0 AS DOUBLE)), "
           "(2, CAST(NULL AS DOUBLE)), (3, CAST(0.5 AS DOUBLE))) AS t(i, v))")
    assert lowered_rows(client, sql) == [("[100.0,null,0.5]",)]
    whole = "SELECT to_json(list(v ORDER BY i)) FROM (SELECT * FROM (VALUES (1, 3), (2, 4)) AS t(i, v))"
    assert lowered_rows(client, whole) == [("[3,4]",)]



def test_json_functions_answer_duckdbs_names_and_lengths(client):
    sql = ("SELECT json_type(CAST('[1, \"a\"]' AS JSON)), json_type(CAST('{\"b\": 1, \"a\": 2}' AS JSON)), "
           "json_type(CAST('\"x\"' AS JSON)), json_type(CAST('2.5' AS JSON)), json_type(CAST('7' AS JSON)), "
           "json_array_length(CAST('[1, [2, 3]]' AS JSON)), json_array_length(CAST('{\"a\": 1}' AS JSON)), "
           "to_json(json_keys(CAST('{\"b\": 1, \"a\": 2}' AS JSON)))")
    # DuckDB types a whole number that is not negative UBIGINT (json_type('7') = 'UBIGINT').
    assert lowered_rows(client, sql) == [("ARRAY", "OBJECT", "VARCHAR", "DOUBLE", "UBIGINT", 2, 0, '["b","a"]')]
