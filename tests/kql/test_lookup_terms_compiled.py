"""The lookup index's compiled terms (collector/store/_lookup_terms.c) make exactly the entries of
its SQL statement (lookup_index.terms_sql, the reference), row for row: on tricky strings (the
characters DuckDB lowers to ASCII, `ſ`, non-ASCII neighbours), on dynamic texts as every writer
of the store writes them (orjson, json.dumps, the compiled ingestion path) and as it never does
(`\\u` escapes, exponents, long or trailing-zero fractions: those rows go to the statement), on
the bench's real batches, and through a real store's writer. And its hash is DuckDB's.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.ingest.prepare import prepare_body
from collector.store import lookup_index
from collector.store.database import Store
from collector.store.schema import SEQ_COLUMN, TABLES

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from loader import batch_body  # noqa: E402

pytestmark = pytest.mark.skipif(not lookup_index.compiled_matches(), reason="the compiled terms are not built")

ALPHABET = "aZ09xK-_. /\"\\\né\u0130\u017f\u212a\u00c5\u1e9e"
IDS = ["4bf92f3577b34da6a3ce929d0e0e4736", "req12345678", "\u0130d12345678", "\u017fkx1234567\u212a", "00000000000000000001"]
RAW_JSON = ['{"a": 1e7}', "[2.50]", '"\\u0031\\u0032\\u0033\\u0034\\u0035\\u0036\\u0037x"', '"top\\nlevel12345678"',
            '{"k": "x\\/12345678y"}', '{"a": 0.000012345678901}', '{"a": 0.0000012345678901}', '{"a": 1.0}',
            '{"a": -0.0}', "123456789.5", '"plain 12345678x"', ' { "a" : 12345678901234567890123 } ',
            '{"a": 0.123456789012345678901}', '{"a": 1234567890123456789.0}', '{"a": 1.5E300}', "true",
            '{"\\u0041bc12345678": 1}', '{"a": "\\t\\b\\f\\r\\"12345678q\\\\x"}', '[1e-7, 12345678.25]', "null"]


def _statement(con: duckdb.DuckDBPyConnection, table: str, batch: pa.Table) -> Counter:
    con.register("incoming", batch)
    return Counter(con.execute(lookup_index.terms_sql(table, "incoming")).fetchall())


def _compiled(con: duckdb.DuckDBPyConnection, table: str, batch: pa.Table) -> tuple[Counter, int]:
    """The entries as the index keeps them with the compiled terms: the C extension's, and the
    statement's for the rows it refuses (and how many it refused)."""
    columns = dict(zip(batch.column_names, batch.columns, strict=True))
    made = lookup_index.compiled_entries(table, columns, batch.num_rows)
    assert made is not None
    hashes, seqs, refused = made
    number = lookup_index._NUMBER[table]
    entries = Counter((h, number, s) for h, s in zip(np.frombuffer(hashes, np.uint64).tolist(),
                                                       np.frombuffer(seqs, np.int64).tolist(), strict=True))
    rows = np.frombuffer(refused, np.int64)
    if len(rows):
        entries += _statement(con, table, batch.take(pa.array(rows)))
    return entries, len(rows)


def _with_seq(table: pa.Table, start: int = 7) -> pa.Table:
    return table.append_column(SEQ_COLUMN, pa.array(range(start, start + table.num_rows), pa.int64()))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.text(ALPHABET, max_size=12)
    | st.sampled_from(IDS) | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(ALPHABET, max_size=5), inner, max_size=3),
    max_leaves=8,
)


@st.composite
def dynamic_texts(draw) -> str | None:
    """A dynamic column's stored text: as orjson or json.dumps writes a value, or a raw form."""
    how = draw(st.integers(0, 3))
    if how == 0:
        return None
    if how == 1:
        return draw(st.sampled_from(RAW_JSON))
    value = draw(json_values)
    if how == 2:
        return orjson.dumps(value).decode()
    return json.dumps(value, ensure_ascii=draw(st.booleans()))


@st.composite
def strings(draw) -> str | None:
    if draw(st.integers(0, 4)) == 0:
        return None
    parts = draw(st.lists(st.one_of(st.text(ALPHABET, max_size=10), st.sampled_from(IDS)), max_size=4))
    return "".join(parts)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_compiled_entries_equal_the_statement(data):
    table = data.draw(st.sampled_from(["traces", "requests", "exceptions", "customEvents"]))
    schema = TABLES[table]
    rows = []
    for _ in range(data.draw(st.integers(1, 6))):
        row: dict = {"timestamp": 0, "_service": "s"}
        for column in schema.columns:
            if column.kql_type == "dynamic" and data.draw(st.booleans()):
                row[column.name] = data.draw(dynamic_texts())
            elif column.kql_type == "string" and data.draw(st.integers(0, 3)) == 0:
                row[column.name] = data.draw(strings())
        rows.append(row)
    batch = _with_seq(schema.to_arrow(rows))
    if data.draw(st.booleans()):  # a slice: Arrow offsets that do not start at 0
        batch = batch.slice(1) if batch.num_rows > 1 else batch
    con = duckdb.connect()
    compiled, _ = _compiled(con, table, batch)
    assert compiled == _statement(con, table, batch)


def test_raw_forms_go_to_the_statement_and_match():
    rows = [{"timestamp": 0, "_service": "s", "message": f"m {IDS[i % len(IDS)]}", "customDimensions": text}
            for i, text in enumerate(RAW_JSON)]
    batch = _with_seq(TABLES["traces"].to_arrow(rows))
    con = duckdb.connect()
    compiled, refused = _compiled(con, "traces", batch)
    assert compiled == _statement(con, "traces", batch)
    assert 8 <= refused < len(RAW_JSON)  # exponents, \u escapes, long fractions...; not the plain ones


def test_a_term_repeated_in_a_row_is_one_entry_either_way():
    """A row's ids repeat (the operation id inside `operation_ParentId`, the same id in a
    dimension, 20 times in a long message): one entry per distinct term of the row, in both."""
    operation = IDS[0]
    rows = [{"timestamp": 0, "_service": "s", "operation_Id": operation, "operation_ParentId": f"|{operation}.1a2b3c4d.",
             "message": " ".join([f"REQ12345678 req12345678 {operation}"] * 20),
             "customDimensions": json.dumps({"Request Id": operation.upper()})},
            {"timestamp": 0, "_service": "s", "operation_Id": operation}]
    batch = _with_seq(TABLES["traces"].to_arrow(rows))
    con = duckdb.connect()
    compiled, refused = _compiled(con, "traces", batch)
    assert compiled == _statement(con, "traces", batch) and refused == 0
    assert sorted(compiled.values()) == [1, 1, 1, 1] and {s for _, _, s in compiled} == {7, 8}


def test_numbers_as_orjson_writes_them_render_alike():
    """What the C reader trusts: a fraction as orjson (and json.dumps) writes it is what DuckDB's
    `->> '$'` renders, over doubles of every magnitude."""
    rng = np.random.default_rng(7)
    drawn = np.concatenate([rng.random(4000) * 10.0 ** rng.uniform(-8, 20, 4000),
                            rng.integers(0, 2**63, 2000).view(np.float64)])
    values = [float(v) for v in drawn if np.isfinite(v)]
    texts = [orjson.dumps({"v": v}).decode() for v in values] + [json.dumps({"v": v}) for v in values]
    rows = [{"timestamp": 0, "_service": "s", "customDimensions": text} for text in texts]
    batch = _with_seq(TABLES["traces"].to_arrow(rows))
    con = duckdb.connect()
    compiled, refused = _compiled(con, "traces", batch)
    assert compiled == _statement(con, "traces", batch)
    ordinary = [{"timestamp": 0, "_service": "s", "customDimensions": orjson.dumps({"v": v}).decode()}
                for v in values if 1e-4 <= abs(v) < 1e15]
    _, refused = _compiled(con, "traces", _with_seq(TABLES["traces"].to_arrow(ordinary)))
    assert refused == 0 and len(ordinary) > 1000  # the numbers of model inputs and durations


def test_the_bench_batches_are_read_whole():
    con = duckdb.connect()
    for number in range(3):
        prepared = prepare_body(batch_body("key", f"op{number}", number), "gzip", {"key": ("svc", True)}, Path("/nonexistent"))
        for table, rows in prepared.tables.items():
            batch = _with_seq(rows)
            compiled, refused = _compiled(con, table, batch)
            assert compiled == _statement(con, table, batch) and refused == 0


@settings(max_examples=100, deadline=None)
@given(text=st.text())
def test_the_hash_is_duckdbs(text):
    (expected,) = duckdb.execute("SELECT hash(?)", [text]).fetchall()[0]
    assert lookup_index._lookup_terms.hash(text.encode()) == expected


def test_a_store_keeps_the_same_entries_either_way(tmp_path, monkeypatch):
    rows = [{"timestamp": 0, "_service": "s", "itemType": "trace", "operation_Id": IDS[i % 5],
             "message": f"call {IDS[(i + 1) % 5]}", "customDimensions": RAW_JSON[i % len(RAW_JSON)]} for i in range(40)]
    kept = []
    for compiled in (True, False):
        store = Store(tmp_path / f"data-{compiled}")
        try:
            store.lookup_index.compiled = compiled
            store.writer.write(tables={"traces": TABLES["traces"].to_arrow(rows)}).result()
            kept.append(Counter(entry for hashes, numbers, seqs in store.lookup_index.recent.chunks
                                for entry in zip(hashes.tolist(), numbers.tolist(), seqs.tolist(), strict=True)))
        finally:
            store.close()
    assert kept[0] == kept[1] and sum(kept[0].values()) > 40
