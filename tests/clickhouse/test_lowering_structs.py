"""The struct-value rules (collector/kql/clickhouse/structs.py) on their own: the DuckDB SQL the
translator writes for a numeric `bin` and for `arg_max`/`arg_min`, lowered and run on ClickHouse's
engine in process (chdb), next to DuckDB's answer to the same SQL (the oracle)."""

from __future__ import annotations

import math

import duckdb
import pytest
import sqlglot

from collector.kql.clickhouse import structs
from collector.kql.clickhouse.lowering import lower

# What the translator writes for `bin(v, r)` on numbers (from `print bin(4.5, 1)`).
BIN = ("list_transform([struct_pack(v := (CASE WHEN false THEN CAST(NULL AS BIGINT) ELSE {v} END), "
       "r := (CASE WHEN false THEN CAST(NULL AS BIGINT) ELSE {r} END))], lambda _bin: CASE WHEN "
       "typeof((_bin.v // NULLIF(_bin.r, 0))) IN ('TINYINT', 'SMALLINT', 'INTEGER', 'BIGINT', 'HUGEINT', "
       "'UTINYINT', 'USMALLINT', 'UINTEGER', 'UBIGINT', 'UHUGEINT') THEN (CASE WHEN (_bin.v < 0) <> "
       "(_bin.r < 0) THEN _bin.v + sign(_bin.r) - _bin.r ELSE _bin.v END) // NULLIF(_bin.r, 0) * _bin.r "
       "WHEN _bin.r = 0 AND _bin.v IS NOT NULL THEN 'NaN' WHEN isinf((_bin.v // NULLIF(_bin.r, 0))) OR "
       "isnan((_bin.v // NULLIF(_bin.r, 0))) THEN (_bin.v // NULLIF(_bin.r, 0)) * _bin.r ELSE "
       "((_bin.v // NULLIF(_bin.r, 0)) - (_bin.v // NULLIF(_bin.r, 0)) % 1 - CASE WHEN "
       "(_bin.v // NULLIF(_bin.r, 0)) % 1 < 0 THEN 1 ELSE 0 END) * _bin.r END)[1]")
ARG_MAX = "COALESCE(arg_max({{'v': {x}}}, {by}), any_value({{'v': {x}}}))['v']"


def _both(client, sql: str) -> tuple[list, list]:
    """(DuckDB's rows, ClickHouse's rows) of *sql*, ClickHouse's through the whole lowering."""
    lowered = lower(sql, {}, database="default", services=None)
    on_clickhouse = client.query(lowered.sql, parameters=lowered.parameters, settings=lowered.settings).result_rows
    return [list(r) for r in duckdb.sql(sql).fetchall()], [list(r) for r in on_clickhouse]


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return (math.isnan(a) and math.isnan(b)) or a == b
    return a == b


@pytest.mark.parametrize(("v", "r"), [("CAST(4.5 AS DOUBLE)", "CAST(1 AS BIGINT)"), ("CAST(-4.5 AS DOUBLE)", "CAST(1 AS BIGINT)"),
                                      ("CAST(28.8 AS DOUBLE)", "CAST(0.5 AS DOUBLE)"), ("CAST(7 AS BIGINT)", "CAST(5 AS BIGINT)"),
                                      ("CAST(-7 AS BIGINT)", "CAST(5 AS BIGINT)"), ("CAST(3.0 AS DOUBLE)", "CAST(0 AS BIGINT)"),
                                      ("CAST(NULL AS DOUBLE)", "CAST(5 AS BIGINT)")])
def test_numeric_bins_floor_as_duckdb_does(client, v, r):
    duck, clickhouse = _both(client, f"SELECT {BIN.format(v=v, r=r)} AS b")
    assert _same(float(duck[0][0]) if duck[0][0] is not None else None,
                 float(clickhouse[0][0]) if clickhouse[0][0] is not None else None), (duck, clickhouse)


def test_numeric_bins_leave_no_struct_or_lambda_behind():
    tree = structs.numeric_bins(sqlglot.parse_one(f"SELECT {BIN.format(v='x', r='5')} FROM t", read="duckdb"))
    assert not list(tree.find_all(sqlglot.exp.Struct)) and not list(tree.find_all(sqlglot.exp.Lambda))


def test_arg_max_and_min_keep_the_winning_rows_value_even_when_null(client):
    rows = ("(VALUES (1, 'a', 10), (2, NULL, 30), (3, 'c', 20), (4, 'd', NULL)) AS t(k, x, ts)")
    sql = (f"SELECT {ARG_MAX.format(x='x', by='ts')} AS latest, "
           f"COALESCE(arg_min({{'v': x}}, ts), any_value({{'v': x}}))['v'] AS earliest FROM {rows}")
    duck, clickhouse = _both(client, sql)
    assert duck == clickhouse == [[None, "a"]]  # the row with ts = 30 has no x: NULL is its answer


def test_arg_max_of_only_null_keys_is_any_value(client):
    sql = f"SELECT {ARG_MAX.format(x='x', by='ts')} FROM (VALUES ('a', CAST(NULL AS BIGINT))) AS t(x, ts)"
    duck, clickhouse = _both(client, sql)
    assert duck == clickhouse == [["a"]]


def test_other_struct_values_are_left_for_clickhouse_to_refuse():
    sql = "SELECT {'v': x, 'w': y}['v'], to_json({'v': x}) FROM t"
    tree = structs.struct_fields(sqlglot.parse_one(sql, read="duckdb"))
    assert len(list(tree.find_all(sqlglot.exp.Struct))) == 2
