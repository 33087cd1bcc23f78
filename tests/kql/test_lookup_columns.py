"""The lookup index leaves out of its statement the columns of a batch that cannot hold a term
(collector/store/lookup_index.py `_may_hold_terms`): the entries must be exactly those of the
statement over every column, including for the characters that lowercase to ASCII and for JSON
escapes in dynamic columns."""

from __future__ import annotations

import duckdb
import pyarrow as pa

from collector.store import lookup_index
from collector.store.schema import SEQ_COLUMN, TABLES

TRICKY = ["py3:2.0.0", "http://127.0.0.1:5001/score", "İ234567x", "K1234567", "ſ1234567", "ab-cd1234",
          "é1234567", "STDOUT", "abc12", "0123456789abcdef", None, "x" * 7 + "1", "Ab12Cd34", "ab12 cd34 ef56gh78"]
JSON = ['{"a": 1e7}', '"\\u0031\\u0032\\u0033\\u0034\\u0035\\u0036\\u0037x"', '{"k": "\\u0041bcdefg1"}',
        '{"Contents": "nothing"}', '[12345678901234567890123]', None, '{"x-request-id": "5f2b-aa11bb22cc33"}']


def _batch(values: list, json_values: list) -> pa.Table:
    """traces rows: each string column holds one of `values` per row (rotated), customDimensions
    one of `json_values`."""
    rows = []
    for i in range(max(len(values), len(json_values)) * 3):
        row: dict = {"timestamp": 0, "_service": "s", "customDimensions": json_values[i % len(json_values)]}
        for number, column in enumerate(c for c in TABLES["traces"].columns if c.kql_type == "string"):
            row[column.name] = values[(i + number) % len(values)]
        rows.append(row)
    table = TABLES["traces"].to_arrow(rows)
    return table.append_column(SEQ_COLUMN, pa.array(range(table.num_rows), pa.int64()))


def _entries(con: duckdb.DuckDBPyConnection, batch: pa.Table, columns: tuple[str, ...]) -> set:
    con.register("incoming", batch)
    return set(con.execute(lookup_index.terms_sql("traces", "incoming", columns)).fetchall()) if columns else set()


def _kept(batch: pa.Table) -> tuple[str, ...]:
    index = lookup_index.LookupIndex.__new__(lookup_index.LookupIndex)
    index._pending, index._high = [], 0
    index.compiled = False  # the SQL statement's columns (the compiled terms read every column)
    index.record(None, "traces", batch)  # type: ignore[arg-type]  (record touches no connection)
    return index._pending[0][1] if index._pending else ()


def test_left_out_columns_hold_no_term():
    con = duckdb.connect()
    every = tuple(name for name in lookup_index._TEXT_COLUMNS["traces"])
    for values, json_values in ((TRICKY, JSON), (["STDOUT", "py3:2.0.0"], ['{"Contents": "nothing"}']),
                                (["abc", None], JSON[:1]), (["host-1"], JSON[1:2])):
        batch = _batch(values, json_values)
        kept = _kept(batch)
        assert _entries(con, batch, kept) == _entries(con, batch, every)


def test_columns_without_terms_are_left_out():
    batch = _batch(["STDOUT", "py3:2.0.0", "http://127.0.0.1:5001/score"], ['{"Contents": "nothing"}'])
    assert _kept(batch) == ()
    assert "customDimensions" in _kept(_batch(["STDOUT"], JSON[1:2]))
