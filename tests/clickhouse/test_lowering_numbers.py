"""Rounding a real on the clickhouse store (collector/kql/clickhouse/numbers.py): DuckDB's `round(x)`
lowered and run on ClickHouse's engine in process (chdb) answers DuckDB's value for ties (both
signs, small and large), near-ties, whole numbers, NaN, the infinities and NULL."""

from __future__ import annotations

import math

import duckdb
from store_helpers import lowered_rows

VALUES = ["10.5", "-10.5", "2.5", "-2.5", "0.5", "-0.5", "0.49999999999999994", "4503599627370495.5",
          "1.4999999999999998", "7.0", "-3.2", "1e300", "'nan'", "'inf'", "'-inf'", "NULL"]


def _select(value: str) -> str:
    return f"SELECT round(CAST({value} AS DOUBLE)) AS r"


def _same(a, b) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return a == b


def test_round_answers_duckdbs_value_on_clickhouse(client):
    for value in VALUES:
        expected = duckdb.sql(_select(value)).fetchall()[0][0]
        got = lowered_rows(client, _select(value))[0][0]
        assert _same(got, expected), (value, got, expected)


def test_a_round_inside_a_round_is_lowered_too(client):
    sql = "SELECT round(round(CAST(0.5 AS DOUBLE)) + 1.5) AS r"  # 1 + 1.5 is a tie again: 3 (even rounding: 2)
    assert lowered_rows(client, sql)[0][0] == duckdb.sql(sql).fetchall()[0][0] == 3.0
