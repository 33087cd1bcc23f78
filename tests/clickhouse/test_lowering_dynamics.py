"""The dynamic-value and shape rules (collector/kql/clickhouse/expansions.py, dynamics.py,
shapes.py, intervals.py) on their own: the DuckDB SQL the translator writes for mv-expand,
mv-apply's row numbers, pack/pack_array, project-rename, getschema and a clock-form interval,
lowered and run on ClickHouse's engine in process (chdb), next to DuckDB's answer to the same SQL
(the oracle). JSON texts compare as parsed values (the query API re-serializes them compactly)."""

from __future__ import annotations

import json

import duckdb
import pytest
import sqlglot

from collector.kql import KqlError
from collector.kql.clickhouse import expansions
from collector.kql.clickhouse.lowering import lower

# What the translator writes for `mv-expand x` of a dynamic value x.
EXPAND = ("UNNEST(CAST(CASE json_type({x}) WHEN 'ARRAY' THEN json_extract({x}, '$[*]') WHEN 'OBJECT' THEN "
          "list_transform(json_keys({x}), lambda k: json_object(k, json_extract({x}, '$.\"' || k || '\"'))) "
          "ELSE json_array({x}) END AS JSON[]))")


# What the translator writes for `summarize make_set(v)`.
MAKE_SET = ("to_json(coalesce(list_distinct(flatten(list(CASE WHEN json_type(TRY_CAST(v AS JSON)) = 'ARRAY' THEN "
            "CAST(to_json(v) AS JSON[]) ELSE [to_json(v)] END) FILTER (WHERE v IS NOT NULL))), []))")


def _both(client, sql: str) -> tuple[list, list]:
    """(DuckDB's rows, ClickHouse's rows) of *sql*, ClickHouse's through the whole lowering."""
    lowered = lower(sql, {}, database="default", services=None)
    on_clickhouse = client.query(lowered.sql, parameters=lowered.parameters, settings=lowered.settings).result_rows
    return [list(r) for r in duckdb.sql(sql).fetchall()], [list(r) for r in on_clickhouse]


def _parsed(rows: list) -> list:
    return [[json.loads(v) if isinstance(v, str) else v for v in row] for row in rows]


@pytest.mark.parametrize("value", [f"CAST({text} AS JSON)" for text in (
    "'[10, 20, \"a\", {\"b\": [1, 2]}]'", "'{\"a\": 1, \"b\": \"x\"}'", "'5'", "'\"s\"'", "'[]'", "'null'")]
    + ["CAST(NULL AS VARCHAR)"])  # a NULL in a dynamic column (JSON text in a Nullable(String))
def test_expanded_items_are_duckdbs_items(client, value):
    sql = f"SELECT n, {EXPAND.format(x='v')} AS item FROM (SELECT 1 AS n, {value} AS v) AS t"
    duck, clickhouse = _both(client, sql)
    assert _parsed(clickhouse) == _parsed(duck), (duck, clickhouse)


# What the translator writes for `with_itemindex = i` next to the expansion of v.
ITEM_INDEX = ("UNNEST(generate_series(CAST(0 AS BIGINT), CASE json_type(v) WHEN 'ARRAY' THEN CAST(json_array_length(v) AS BIGINT) "
              "WHEN 'OBJECT' THEN CAST(json_array_length(json_keys(v)) AS BIGINT) ELSE CAST(1 AS BIGINT) END - 1))")


@pytest.mark.parametrize("value", ["'[3, 1, 2]'", "'{\"k\": 1, \"j\": [2]}'", "'7'", "'[]'"])
def test_item_index_is_zipped_to_the_items(client, value):
    sql = f"SELECT {EXPAND.format(x='v')} AS x, {ITEM_INDEX} AS i FROM (SELECT CAST({value} AS JSON) AS v) AS t"
    duck, clickhouse = _both(client, sql)
    assert _parsed(clickhouse) == _parsed(duck), (duck, clickhouse)


def test_expanding_next_to_another_array_is_refused():
    sql = (f"SELECT {EXPAND.format(x='v')} AS item, UNNEST(generate_series(0, 2)) AS i "
           "FROM (SELECT CAST('[1, 2, 3]' AS JSON) AS v) AS t")
    with pytest.raises(KqlError, match="not supported on the clickhouse store"):
        lower(sql, {}, database="default", services=None)


def test_row_numbers_follow_the_rows_values():
    tree = sqlglot.parse_one('SELECT *, row_number() OVER () AS "__kql_row" FROM t', read="duckdb")
    lowered = expansions.stable_row_numbers(tree).sql("clickhouse")
    assert "ORDER BY tuple(*)" in lowered, lowered
    other = sqlglot.parse_one('SELECT row_number() OVER () AS "n" FROM t', read="duckdb")
    assert "ORDER BY" not in expansions.stable_row_numbers(other).sql("clickhouse")


@pytest.mark.parametrize(("built", "expected"), [
    ("json_object('k', to_json(CAST(1 AS BIGINT)), 'm', to_json('v/w'))", {"k": 1, "m": "v/w"}),
    ("json_object('k', CAST(NULL AS JSON))", {"k": None}),
    ("json_array(to_json(CAST(1 AS BIGINT)), to_json(2.5), to_json('x'), to_json(true))", [1, 2.5, "x", True]),
])
def test_built_json_is_duckdbs_value(client, built, expected):
    duck, clickhouse = _both(client, f"SELECT {built} AS j")
    assert json.loads(duck[0][0]) == json.loads(clickhouse[0][0]) == expected, (duck, clickhouse)


def test_renamed_columns_keep_order_and_types(client):
    sql = 'SELECT * RENAME ("a" AS "c") FROM (SELECT CAST(1 AS BIGINT) AS "a", \'x\' AS "b") AS _s0'
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck == [[1, "x"]]
    assert '"a" AS "c"' in lower(sql, {}, database="default", services=None).sql


def test_described_tables_are_duckdbs_columns_in_order(client):
    sql = ("SELECT column_name, column_type, CAST(row_number() OVER () - 1 AS INTEGER) AS o FROM "
           "(DESCRIBE SELECT * FROM (SELECT CAST(1 AS INTEGER) AS \"z\", 'x' AS \"a\", CAST('[1]' AS JSON) AS \"j\") AS _s0)")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck == [["z", "INTEGER", 0], ["a", "VARCHAR", 1], ["j", "JSON", 2]]


@pytest.mark.parametrize("text", ["00:00:01.5", "00:01:00", "26:03:04.000250", "-01:00:00"])
def test_clock_intervals_are_their_seconds(client, text):
    duck, clickhouse = _both(client, f"SELECT epoch(INTERVAL '{text}') AS s")
    assert float(clickhouse[0][0]) == float(duck[0][0]), (duck, clickhouse)


@pytest.mark.parametrize("rows", [
    "(CAST('[1, 2]' AS JSON)), (CAST('3' AS JSON)), (CAST('{\"a\": 1}' AS JSON)), (CAST('[2]' AS JSON)), (NULL)",
    "('500'), ('200'), ('500'), (NULL), ('a\"b')",
    "(CAST(3 AS BIGINT)), (CAST(1 AS BIGINT)), (CAST(3 AS BIGINT))",
    "(true), (false), (true)",
])
def test_made_sets_hold_duckdbs_items(client, rows):
    """The same items as DuckDB's set; their order is not compared (Kusto leaves it unspecified)."""
    duck, clickhouse = _both(client, f"SELECT {MAKE_SET} AS s FROM (VALUES {rows}) AS t(v)")
    as_set = [sorted(json.dumps(item) for item in json.loads(r[0][0])) for r in (duck, clickhouse)]
    assert as_set[0] == as_set[1], (duck, clickhouse)


def test_made_set_of_a_string_holding_an_array_is_refused_when_it_runs(client):
    sql = f"SELECT {MAKE_SET} AS s FROM (VALUES ('[1, 2]')) AS t(v)"
    lowered = lower(sql, {}, database="default", services=None)
    with pytest.raises(Exception, match="kql-unsupported: make_set of a string holding a JSON array"):
        client.query(lowered.sql, settings=lowered.settings)


def test_made_set_of_a_real_keeps_duckdbs_sql():
    """A real's JSON text differs between the engines: left as DuckDB wrote it (ClickHouse refuses it)."""
    sql = f"SELECT {MAKE_SET} AS s FROM (VALUES (CAST(1.5 AS DOUBLE))) AS t(v)"
    assert "arrayStringConcat" not in lower(sql, {}, database="default", services=None).sql


def test_list_columns_are_arrays(client):
    sql = ("SELECT json_type(l) AS t, json_array_length(l) AS n FROM "
           "(SELECT coalesce(list(x) FILTER (WHERE x IS NOT NULL), []) AS l FROM (VALUES (1), (1), (NULL)) AS t(x)) AS _s0")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck == [["ARRAY", 2]]


@pytest.mark.parametrize(("kind", "levels"), [
    ("DOUBLE", "[CAST(0 AS DOUBLE) / 100.0, CAST(50 AS DOUBLE) / 100.0, CAST(100 AS DOUBLE) / 100.0]"),
    ("DOUBLE", "list_transform(CAST(CAST('[25,75]' AS JSON) AS DOUBLE[]), lambda __kql_p: __kql_p / 100.0)"),
    ("BIGINT", "[CAST(50 AS DOUBLE) / 100.0, CAST(99 AS DOUBLE) / 100.0]"),
])
def test_percentile_arrays_are_duckdbs_text(client, kind, levels):
    """Text compared after the query API's compact re-serialization: a whole real keeps its `.0`."""
    middle = "10.5" if kind == "DOUBLE" else "12"
    sql = (f"SELECT CAST(to_json(quantile_disc(x, {levels})) AS JSON) AS p FROM "
           f"(SELECT CAST(v AS {kind}) AS x FROM (VALUES (1), ({middle}), (40), (100), (NULL)) AS t(v)) AS _s0")
    duck, clickhouse = _both(client, sql)
    assert [json.dumps(json.loads(r[0])) for r in clickhouse] == [json.dumps(json.loads(r[0])) for r in duck], (duck, clickhouse)


def test_percentile_arrays_over_no_rows_are_null(client):
    sql = ("SELECT CAST(to_json(quantile_disc(x, [0.5])) AS JSON) AS p FROM "
           "(SELECT CAST(v AS DOUBLE) AS x FROM (VALUES (1)) AS t(v) WHERE v > 5) AS _s0")
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck == [[None]]


def _literal_array(text: str) -> str:
    """The translator's reading of `dynamic(<text>)` as a list (NULL when not an array)."""
    value = f"CAST(CAST('{text}' AS JSON) AS JSON)"
    return f"(CASE WHEN json_type({value}) = 'ARRAY' THEN CAST({value} AS JSON[]) END)"


def _first_seen(array: str) -> str:
    return f"list_filter({array}, lambda __kql_x, __kql_i: list_position({array}, __kql_x) = __kql_i)"


_MIXED = _literal_array('[4,"a",1]')
_OBJECTS = _literal_array('[{"a":1},{"a":1}]')
_OBJECT = _literal_array('{"a":1}')


@pytest.mark.parametrize("expression", [
    _first_seen(f"flatten([{_literal_array('[1,2]')}, {_literal_array('[2,3]')}, {_MIXED}])"),
    f"list_filter({_first_seen(_literal_array('[1,2,2,3]'))}, lambda __kql_x: list_contains({_literal_array('[2,3,4]')}, __kql_x))",
    f"list_filter({_first_seen(_literal_array('[1,2,3,1]'))}, lambda __kql_x: NOT list_contains({_literal_array('[2]')}, __kql_x))",
    _first_seen(f"flatten([{_literal_array('[]')}, {_OBJECTS}])"),
])
def test_json_lists_are_duckdbs_sets(client, expression):
    duck, clickhouse = _both(client, f"SELECT CAST(to_json({expression}) AS JSON) AS s")
    assert json.loads(clickhouse[0][0]) == json.loads(duck[0][0]), (duck, clickhouse)


def test_json_lists_of_a_non_array_keep_duckdbs_sql():
    sql = f"SELECT CAST(to_json({_first_seen(_OBJECT)}) AS JSON) AS s"
    assert "JSONExtractArrayRaw" not in lower(sql, {}, database="default", services=None).sql


# What the translator writes for `summarize make_bag(v)` (make_bag_if adds `AND (<predicate>)`).
MAKE_BAG = ("coalesce(CAST(to_json(list_reduce(list(CAST(CAST(v AS JSON) AS MAP(VARCHAR, JSON))) FILTER (WHERE "
            "json_type(CAST(v AS JSON)) = 'OBJECT'{extra}), lambda __kql_a, __kql_b: map_concat(__kql_a, __kql_b))) "
            "AS JSON), '{{}}'::JSON)")


@pytest.mark.parametrize(("rows", "extra"), [
    ("('{\"b\":1,\"a\":2}', true), (NULL, true), ('{\"c\":{\"x\":[1, 2]},\"b\":5}', true)", ""),
    ("('{\"b\":1,\"a\":2}', true), ('{\"c\":3,\"b\":5}', false)", " AND (keep)"),
    ("(NULL, true)", ""),
])
def test_merged_bags_are_duckdbs_bag(client, rows, extra):
    """Keys in first-seen order, the last row's value (rows in the order written: one part)."""
    sql = f"SELECT {MAKE_BAG.format(extra=extra)} AS b FROM (VALUES {rows}) AS t(v, keep)"
    duck, clickhouse = _both(client, sql)
    assert json.dumps(json.loads(clickhouse[0][0])) == json.dumps(json.loads(duck[0][0])), (duck, clickhouse)


def test_json_type_reads_the_text_under_a_cast(client):
    """ClickHouse's JSON object type answers 'Null' to JSONType: a CAST to JSON is dropped."""
    sql = ("SELECT json_type(CAST(v AS JSON)) AS t FROM (VALUES ('{\"a\":1}'), ('[1]'), ('5'), ('-5'), ('0'), "
           "('1.5'), ('\"s\"'), ('true'), ('null')) AS t(v)")
    duck, clickhouse = _both(client, sql)
    assert sorted(clickhouse) == sorted(duck), (duck, clickhouse)


def _bag(text: str) -> str:
    """The translator's entries of `dynamic(<text>)` as a bag (none when not an object)."""
    value = f"CAST(CAST('{text}' AS JSON) AS JSON)"
    return (f"map_entries((CASE WHEN json_type({value}) = 'OBJECT' THEN CAST({value} AS MAP(VARCHAR, JSON)) "
            "ELSE MAP {}::MAP(VARCHAR, JSON) END))")


def _first_keys(entries: str) -> str:
    return (f"list_filter({entries}, lambda __kql_e, __kql_i: list_position(list_transform({entries}, "
            "lambda __kql_e: __kql_e.key), __kql_e.key) = __kql_i)")


_BAG_A, _BAG_B = _bag('{"A1":12,"B1":{"x":[1, 2]}}'), _bag('{"A2":81,"A1":1}')
_NOT_A_BAG = _bag("[1,2]")


@pytest.mark.parametrize("expression", [
    _first_keys(f"flatten([{_BAG_A}, {_BAG_B}])"),
    _first_keys(f"flatten([{_NOT_A_BAG}, {_BAG_B}])"),
    f"list_filter({_BAG_A}, lambda __kql_e: NOT list_contains(CAST(CAST('[\"A1\",\"Z\"]' AS JSON) AS VARCHAR[]), __kql_e.key))",
])
def test_bag_entries_are_duckdbs_bag(client, expression):
    """bag_merge keeps the first bag's value of a key; bag_remove_keys drops the listed keys."""
    duck, clickhouse = _both(client, f"SELECT CAST(to_json(map_from_entries({expression})) AS JSON) AS b")
    assert json.dumps(json.loads(clickhouse[0][0])) == json.dumps(json.loads(duck[0][0])), (duck, clickhouse)


def test_missing_members_are_null(client):
    """`d["model"]` of a bag without it is NULL in DuckDB (JSONExtractRaw alone answers '')."""
    sql = ("SELECT json_extract(v, '$.model') AS m, json_extract(v, '$.a') AS a, json_extract(v, '$.a.b') AS b "
           "FROM (VALUES ('{\"a\":1}'), ('{\"model\":\"m1\",\"a\":{\"b\":[1, 2]}}'), ('[1]'), (NULL)) AS t(v)")
    duck, clickhouse = _both(client, sql)
    assert sorted(map(str, _parsed(clickhouse))) == sorted(map(str, _parsed(duck))), (duck, clickhouse)


def test_typed_columns_are_their_duckdb_type(client):
    """typeof() of an unnested column (sqlglot cannot type it) is read by binding the source."""
    sql = (f"SELECT CASE typeof(k) WHEN 'JSON' THEN k ->> '$' WHEN 'INTERVAL' THEN CAST(CAST(k AS INTERVAL) AS VARCHAR) "
           f"ELSE CAST(k AS VARCHAR) END AS s FROM (SELECT {EXPAND.format(x='v')} AS k "
           "FROM (SELECT CAST('[\"a\", \"b\"]' AS JSON) AS v) AS t) AS _s1")
    lowered = lower(sql, {}, database="default", services=None)
    assert "INTERVAL" not in lowered.sql.upper().replace("'INTERVAL'", "")
    duck, clickhouse = _both(client, sql)
    assert sorted(clickhouse) == sorted(duck) == [["a"], ["b"]]


@pytest.mark.parametrize("n", [25, 50, 75, 100, 1000])
def test_percentile_lists_pick_duckdbs_rank_where_level_times_count_rounds_up(client, n):
    """n * 0.07 is 7.000000000000001 over 100 values: DuckDB picks the 7th, as ceil(n * 7 / 100.0)."""
    levels = ", ".join(f"CAST(CAST({p} AS BIGINT) AS DOUBLE) / 100.0" for p in (7, 14, 28, 57))
    source = (f"(SELECT i AS x, TIMESTAMP '2026-01-01' + to_seconds(i) AS t FROM generate_series(CAST(1 AS BIGINT), "
              f"CAST({n} AS BIGINT), CAST(1 AS BIGINT)) AS _range(i))")
    sql = f"SELECT CAST(to_json(quantile_disc(x, [{levels}])) AS JSON) AS a, quantile_disc(t, [{levels}]) AS b FROM {source} s"
    duck, clickhouse = _both(client, sql)
    assert clickhouse == duck
    assert duck[0][0] == "[" + ",".join(str(-(-n * p // 100)) for p in (7, 14, 28, 57)) + "]"
