"""Nested type tests on the clickhouse store (collector/kql/clickhouse/retyping.py): `typeof()` of a
value holding another type test (tostring's CASE), and of a bag or an array built in the query
(bag_pack/pack_array under their size limit), folded to the live branch, so narrow's and
pack_array-of-bags' SQL runs on ClickHouse's engine in process (chdb) with DuckDB's answer."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from store_helpers import lowered_rows

from collector.kql.clickhouse.lowering import lower
from collector.kql.clickhouse.retyping import fold_typeof_nested
from collector.kql.columns import _empty_store
from collector.kql.compiler import compile_kql
from collector.kql.engine import run_query


def _sql(kql: str) -> str:
    return compile_kql(kql, datetime(2026, 1, 2)).sql


def test_typeof_of_a_tostring_folds_to_varchar():
    import sqlglot
    tree = sqlglot.parse_one(
        "SELECT typeof(coalesce(CASE typeof(a) WHEN 'JSON' THEN a ->> '$' ELSE CAST(a AS VARCHAR) END, '')) AS t "
        "FROM (SELECT CAST(1 AS BIGINT) AS a)", read="duckdb")
    folded = fold_typeof_nested(tree)
    assert not list(folded.find_all(sqlglot.exp.Typeof)), folded.sql("duckdb")
    assert "'VARCHAR'" in folded.sql("duckdb")


def test_pack_array_of_bags_answers_the_same_json(client):
    kql = ("datatable(a:long, b:string)[1, \"x\", 2, \"y\"] | project p = pack_array(bag_pack('k', a, 'v', tostring(b)), "
           "bag_pack('k', b)) | order by tostring(p) asc")
    duck = run_query(_empty_store().cursor(), kql, services=None).rows
    got = lowered_rows(client, _sql(kql))
    assert [json.loads(r[0]) for r in got] == [json.loads(r[0]) if isinstance(r[0], str) else r[0] for r in duck]
    assert "typeof" not in lower(_sql(kql), {}, database="default", services=None).sql.lower()


@pytest.mark.parametrize("columns,cells", [("a:long, b:string", '1, "x", 2, "y"'),
                                           ("t:datetime, n:bool", "datetime(2026-01-01), true, datetime(null), bool(null)")])
def test_narrow_cells_are_duckdbs(client, columns, cells):
    names = [c.split(":")[0] for c in columns.split(", ")]
    packed = ", ".join(f"bag_pack('Column', \"{n}\", 'Value', tostring(['{n}']))" for n in names)
    kql = (f"datatable({columns})[{cells}] | serialize Row = row_number() - 1 | mv-expand __kql_cell = pack_array({packed}) "
           "| project Row, Column = tostring(__kql_cell.Column), Value = tostring(__kql_cell.Value)")
    duck = run_query(_empty_store().cursor(), kql, services=None).rows
    assert sorted(map(tuple, lowered_rows(client, _sql(kql)))) == sorted(map(tuple, duck))
