"""The lookup index's compiled terms (collector/store/_lookup_terms.c) make exactly the entries of
its SQL statement (lookup_index.terms_sql, the reference), row for row: on tricky strings (the
characters DuckDB lowers to ASCII, `ſ`, non-ASCII neighbours), on dynamic texts as every writer
of the store writes them (orjson, json.dumps, the compiled ingestion path) and as it never does
(`\\u` escapes, exponents, long or trailing-zero fractions: those rows go to the statement), on
the bench's real batches, and through a real store's writer; at the edges of the scan's words
and blocks (8 and 64 bytes, the data buffer's end, non-zero offsets, non-ASCII neighbours), and
in its portable build (no SSE2). And its hash is DuckDB's.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
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
            store.writer.sync()  # committed, not only answered from the ingest spool
            kept.append(Counter(entry for hashes, numbers, seqs in store.lookup_index.recent.chunks
                                for entry in zip(hashes.tolist(), numbers.tolist(), seqs.tolist(), strict=True)))
        finally:
            store.close()
    assert kept[0] == kept[1] and sum(kept[0].values()) > 40


def _exact_end(column: pa.Array) -> pa.Array:
    """The same strings with a data buffer that ends with the last value (pyarrow pads its own
    to 64 bytes): the compiled scan reads words, and must read none past the buffer."""
    validity, offsets, data = column.buffers()
    end = np.frombuffer(offsets, np.int32)[column.offset + len(column)]
    exact = pa.py_buffer(data.to_pybytes()[:end] if data is not None else b"")
    return pa.Array.from_buffers(pa.string(), len(column), [validity, offsets, exact], column.null_count, column.offset)


def _traces(messages: list, dimensions: list | None = None) -> pa.Table:
    """Traces rows with these messages (and customDimensions), their columns' data buffers ending
    with their last values."""
    rows = [{"timestamp": 0, "_service": "s", "message": m} | ({"customDimensions": dimensions[i]} if dimensions else {})
            for i, m in enumerate(messages)]
    table = TABLES["traces"].to_arrow(rows)
    for name in ("message", "customDimensions") if dimensions else ("message",):
        index = table.column_names.index(name)
        table = table.set_column(index, name, _exact_end(table.column(name).combine_chunks()))
    return _with_seq(table)


def _assert_same_entries(batch: pa.Table) -> int:
    """The compiled entries equal the statement's, on the batch and on slices of it (Arrow
    offsets that do not start at 0); the compiled entries' count."""
    con = duckdb.connect()
    for start in (0, 1, 3):
        part = batch.slice(start)
        compiled, _ = _compiled(con, "traces", part)
        assert compiled == _statement(con, "traces", part)
    return sum(_compiled(con, "traces", batch)[0].values())


TERM = "a1B2c3D4e5" * 40


def test_runs_of_every_length_at_every_offset():
    """Words of 8 bytes and blocks of 64: runs of 7 to 300 characters starting at each offset of
    a word, ending at the value's end (and at its buffer's) or before a byte that ends a run."""
    messages = []
    for length in (7, 8, 9, 15, 16, 17, 56, 57, 63, 64, 65, 71, 72, 120, 127, 128, 129, 191, 192, 193, 300):
        for lead in range(9):
            messages += ["-" * lead + TERM[:length], "x." * lead + TERM[:length] + " z", f"{TERM[:length]}@" * (lead % 3 + 1)]
    messages += ["", "a", "1234567", "12345678", None, "zzzzzzzz", "x" * 65 + "1"]
    assert _assert_same_entries(_traces(messages)) > 300


def test_runs_that_only_some_bytes_make_terms():
    """No digit, a counter's zeros, runs just short, runs split by every kind of byte."""
    messages = ["abcdefghijklmnopqrstuvwxyz" * 5, "000000abc123", "00000abc1234", "0" * 70, "0000000" + "1" * 60,
                "abcdefg1", "abcdef1", " ".join(["ab12cd34ef"] * 30), "ab12cd34ef" * 7 + "\x00" + "ab12cd34ef",
                *(TERM[:12] + chr(c) + TERM[:12] for c in range(1, 128) if not chr(c).isalnum())]
    assert _assert_same_entries(_traces(messages)) > 60


@pytest.mark.parametrize("other", ["é", "\u0130", "\u017f", "\u212a", "\u2019", "\u00c5", "\u0141", "\u1e9e", "\u00ff"])
def test_non_ascii_next_to_terms(other):
    """Bytes >= 0x80 before, after and inside runs, at word and block boundaries: the three
    characters that lower to a term character (then the value is read a character at a time)
    and others that end a run (among them other characters with the same lead bytes)."""
    messages = []
    for at in (0, 1, 6, 7, 8, 9, 55, 56, 57, 62, 63, 64, 65, 127, 128):
        messages += ["." * at + other + "ab12cd3", "." * at + "ab12cd3" + other, "-" * at + "1234567" + other + "x",
                     "." * at + TERM[:20] + other + TERM[:20], "." * at + other * 8 + "1", "." * at + "ab12cd3" + other * 3]
    _assert_same_entries(_traces(messages))


def test_long_values():
    """Values of thousands of bytes: runs spanning many blocks, terms all along them."""
    rng = np.random.default_rng(3)
    messages = [" ".join(IDS[k % len(IDS)] if k % 3 else TERM[: int(rng.integers(1, 300))] for k in range(400)),
                TERM * 30, "x" * 5000 + "1", ("ab12cd34 " * 900) + TERM[:9], "\u017f" + TERM * 5]
    assert _assert_same_entries(_traces(messages)) > 100


def test_json_texts_across_blocks():
    """Dynamic texts longer than a block of 64 bytes: strings, fractions, exponents, `true` and
    escapes at every offset around the block boundaries (a backslash late in a text makes the
    whole text walked token by token)."""
    texts = []
    for pad in range(0, 140, 3):
        fill = "x" * pad
        texts += [orjson.dumps({"k": fill, "v": 0.5692038748222122, "w": [2.5, 12345678.25, True, 7]}).decode(),
                  orjson.dumps({"k": fill, "v": 1e-7, "id": IDS[0]}).decode(),
                  orjson.dumps([fill, 1.0, False, "e.5", 123456789012]).decode(),
                  json.dumps({"k": fill, "q": 'say "12345678ab"', "n": 2.50}),
                  json.dumps({"k": fill, "u": "\u017f12345678"}),
                  json.dumps({"k": fill, "u": "\u017f12345678"}, ensure_ascii=False),
                  f'{{"k": "{fill}", "f": 0.000012345678901, "g": 1.5E300}}',
                  f'[{pad}.0, {pad}.10, -{pad}.5, "{fill}.e"]']
    con = duckdb.connect()
    batch = _traces([f"m {IDS[i % len(IDS)]}" for i in range(len(texts))], texts)
    for start in (0, 2):
        compiled, refused = _compiled(con, "traces", batch.slice(start))
        assert compiled == _statement(con, "traces", batch.slice(start))
    assert 0 < refused < len(texts) - 2


def test_the_portable_scan_makes_the_same_entries(tmp_path):
    """The extension built without SSE2 (-DLOOKUP_TERMS_SWAR, what aarch64 runs: 8 bytes a
    word) makes the same entries as this build, on every edge above."""
    pytest.importorskip("setuptools")
    source = Path(lookup_index.__file__).with_name("_lookup_terms.c")
    (tmp_path / "_lookup_terms.c").write_bytes(source.read_bytes())
    (tmp_path / "setup.py").write_text("from setuptools import Extension, setup\nsetup(name='swar', ext_modules=[Extension("
                                       "'_lookup_terms', ['_lookup_terms.c'], define_macros=[('LOOKUP_TERMS_SWAR', None)])])\n")
    built = subprocess.run([sys.executable, "setup.py", "-q", "build_ext", "--inplace"], cwd=tmp_path, capture_output=True)
    if built.returncode or not list(tmp_path.glob("_lookup_terms*.so")):
        pytest.skip(f"the extension does not build here: {built.stderr.decode()[-200:]}")
    spec = importlib.util.spec_from_file_location("swar._lookup_terms", next(tmp_path.glob("_lookup_terms*.so")))
    assert spec is not None and spec.loader is not None
    portable = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(portable)
    messages = ["." * at + other + TERM[:length] + other for at in range(0, 70, 5) for length in (7, 8, 9, 64, 65, 130)
                for other in ("", "é", "\u017f", "\u212a", "\u2019")]
    texts = [orjson.dumps({"k": "x" * (i % 90), "v": [0.5692038748222122, 1e-7, IDS[i % 5]]}).decode() for i in range(len(messages))]
    texts[7] = json.dumps({"k": "x" * 80, "u": "\u017f12345678"})
    batch = _traces(messages, texts)
    columns = dict(zip(batch.column_names, batch.columns, strict=True))
    made = lookup_index.compiled_entries("traces", columns, batch.num_rows)
    try:
        lookup_index._lookup_terms = portable
        assert lookup_index.compiled_entries("traces", columns, batch.num_rows) == made
    finally:
        lookup_index._lookup_terms = sys.modules["collector.store._lookup_terms"]
