"""`toreal`/`todouble` of a dynamic value on both stores (the Model monitoring page
filters collected inputs with `toreal(data["feature"])`): DuckDB the oracle, ClickHouse's engine in
process (chdb) beside it, same rows, same answers. Until typing.py typed `json_extract` as JSON,
ClickHouse refused every such query (the translator's dead interval branch reached it).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from kql_differential_store import DATABASE, build_both
from test_kql_differential import _answer, _same_rows

ODD = ['{"x": " 1.25 "}', '{"x": "oops"}', '{"x": 7}', '{"x": 2.5}', '{"x": true}', '{"x": false}', '{"x": null}', "{}",
       '{"x": [1]}', '{"x": {"y": 1}}', '{"x": "3e2"}', '{"x": -4}']
"""Numbers, numbers as text (spaced, exponent), text, booleans, null, absent, arrays and objects."""

QUERIES = [
    "traces | where message == 'odd' | project operation_Id, r = toreal(customDimensions.x), d = todouble(customDimensions['x'])",
    "traces | where message == 'odd' | project operation_Id, l = tolong(customDimensions.x), i = toint(customDimensions.x)",
    "traces | where message == 'odd' | extend v = toreal(customDimensions.x) | where v >= 2 | project operation_Id, v",
    "traces | extend v = toreal(customDimensions.Contents.input[1]) | where v >= 2 "
    "| join kind=inner (requests | project operation_Id, request_time = timestamp, name) on operation_Id "
    "| project request_time, operation_Id, name, v | top 5 by request_time desc",
]


@pytest.fixture(scope="module")
def stores():
    duck, clickhouse = build_both()
    for index, dimensions in enumerate(ODD):
        duck.execute("INSERT INTO traces (timestamp, message, customDimensions, operation_Id, itemType, itemCount, _service, _seq) "
                     "VALUES ('2026-01-01 00:05:00', 'odd', ?, ?, 'trace', 1, 'a', ?)", [dimensions, f"odd{index}", 1000 + index])
    rows = duck.sql("SELECT timestamp, message, CAST(customDimensions AS VARCHAR) AS customDimensions, operation_Id, itemType, "
                    "itemCount, _service, _seq FROM traces WHERE message = 'odd'").to_arrow_table()
    clickhouse.client().insert_arrow(f"`{DATABASE}`.`traces`", rows if isinstance(rows, pa.Table) else rows.read_all())
    yield duck, clickhouse
    duck.close()
    clickhouse.client().close()


@pytest.mark.parametrize("query", QUERIES)
def test_dynamic_to_number_same_on_both(stores, query):
    duck, clickhouse = stores
    oracle, answer = _answer(duck.cursor(), query), _answer(clickhouse, query)
    assert oracle[0] == "rows" and oracle[2], oracle
    assert answer[0] == "rows", answer
    assert answer[1] == oracle[1]
    assert _same_rows(oracle[2], answer[2], ordered=False), "\n".join(f"{a} {b}" for a, b in zip(sorted(oracle[2]), sorted(answer[2]), strict=False))
