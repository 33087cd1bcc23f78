"""The compiled path hands each table to pyarrow through the Arrow C data interface
(_cenvelope_arrow.h): one struct ArrowArray of the schema's columns, filled in C as compiled._layout
says. test_compiled_path.py holds its rows to the Python path's; here, what the import itself must
get right: valid Arrow in the writer's schema (validity bitmaps, offsets, filled nulls), tables that
slice and concatenate, buffers that outlive the parse and are freed on any thread, and an export
that refuses what it cannot do."""

import gc
import gzip
import sys
import threading
import types

import pyarrow as pa
import pytest
from loader import batch_body
from test_columnar import _plain
from test_compiled_path import ROUTING, assert_same, bodies, built  # noqa: F401 (built: autouse)

from collector.ingest import compiled
from collector.ingest.item_ids import random_head
from collector.ingest.stored_form import NO_CLIENT_IP
from collector.store.schema import TABLES


def _tables(body: bytes) -> dict[str, pa.Table]:
    read = compiled.read_body(body, ROUTING)
    assert read is not None
    return read[1]


def _traces_with_gaps() -> list[dict]:
    """Traces where severityLevel, the client's IP and a tag are there in some rows only, the first
    row's included and not (a column's first value written after nulls, and before them)."""
    items = []
    for n in range(19):
        item = _plain("MessageData", message=f"m{n}" * (n % 3), **({"severityLevel": n % 5} if n % 3 else {}))
        item["tags"] = {**item["tags"], **({"ai.location.ip": f"10.0.0.{n}"} if n % 4 == 1 else {}),
                        **({"ai.cloud.role": "r"} if n % 2 else {})}
        items.append(item)
    return items


def test_tables_are_valid_arrow_in_the_writers_schema():
    body = gzip.decompress(batch_body("key-a", "op", 1))
    tables = _tables(body)
    assert set(tables) == {"traces", "requests", "dependencies", "customMetrics", "exceptions"}
    for name, table in tables.items():
        assert table.schema == TABLES[name].incoming_schema
        assert table.column("client_IP").null_count == 0
        table.validate(full=True)


def test_null_bitmaps_fills_and_slices(tmp_path):
    for body in bodies(_traces_with_gaps()):
        assert_same(body, tmp_path)
        table = _tables(body)["traces"]
        table.validate(full=True)
        rows = table.to_pylist()
        assert [row["severityLevel"] for row in rows] == [n % 5 if n % 3 else None for n in range(19)]
        assert [row["client_IP"] for row in rows] == [f"10.0.0.{n}" if n % 4 == 1 else NO_CLIENT_IP for n in range(19)]
        assert [row["cloud_RoleName"] for row in rows] == ["r" if n % 2 else None for n in range(19)]
        assert all(row["client_Browser"] is None and row["customMeasurements"] is None for row in rows)
        assert all(row["_service"] == row["appName"] == "svc-a" and row["appId"] == "key-a" for row in rows)
        for start, length in ((0, 1), (3, 9), (9, 10), (18, 1), (5, 0)):
            part = table.slice(start, length)
            part.validate(full=True)
            assert part.to_pylist() == rows[start:start + length]
        again = pa.concat_tables([table.slice(7), table.slice(0, 7)])
        assert again.to_pylist() == rows[7:] + rows[:7]


def test_a_column_of_empty_texts_only(tmp_path):
    """Every value empty: the column's data buffer was never written (no pointer in C)."""
    for body in bodies([_plain("MessageData", message="", properties={}) for _ in range(3)]):
        assert_same(body, tmp_path)
        table = _tables(body)["traces"]
        table.validate(full=True)
        assert table.column("message").to_pylist() == ["", "", ""]


def test_tables_of_several_services_keep_the_taken_rows():
    items = [{**_plain("MessageData", message=f"m{n}"), "iKey": ikey}
             for n, ikey in enumerate(["key-a", "key-b", "KEY-A", "key-unknown", "key-a"])]
    for body in bodies(items):
        table = _tables(body)["traces"]
        table.validate(full=True)
        assert table.column("message").to_pylist() == ["m0", "m2", "m4"]
        assert table.column("_service").to_pylist() == ["svc-a"] * 3
        assert table.column("appName").to_pylist() == ["svc-a"] * 3
        assert table.column("appId").to_pylist() == ["key-a", "KEY-A", "key-a"]


def test_tables_outlive_the_parse_and_are_freed_on_any_thread():
    body = gzip.decompress(batch_body("key-a", "op", 2))
    expected = {name: _without_ids(table) for name, table in _tables(body).items()}
    kept = _tables(bytes(body))
    del body
    gc.collect()
    assert {name: _without_ids(table) for name, table in kept.items()} == expected
    columns = [kept["traces"].column("message"), kept["customMetrics"].column("valueSum")]
    dropper = threading.Thread(target=kept.clear)
    dropper.start()
    dropper.join()
    assert columns[0].to_pylist() == [row["message"] for row in expected["traces"]]
    assert columns[1].to_pylist() == [row["value"] for row in expected["customMetrics"]]


def _without_ids(table: pa.Table) -> list[dict]:
    return [{**row, "itemId": None} for row in table.to_pylist()]


def test_a_table_exports_once_and_unexported_tables_are_freed():
    body = gzip.decompress(batch_body("key-a", "op", 3))
    _, _, by_table = compiled._native.prepare(body, random_head())
    _, _, rows = by_table["traces"]
    array, address = compiled._native.export(rows, "svc")
    batch = pa.RecordBatch._import_from_c(address, TABLES["traces"].incoming_schema)
    batch.validate(full=True)
    with pytest.raises(ValueError, match="exported already"):
        compiled._native.export(rows, "svc")
    del array, by_table, rows  # the other tables' buffers go with their capsules
    assert batch.column("_service").to_pylist() == ["svc"] * batch.num_rows


def test_an_unread_export_is_released_by_its_capsule():
    body = gzip.decompress(batch_body("key-a", "op", 4))
    for _ in range(3):
        _, _, by_table = compiled._native.prepare(body, random_head())
        exported = [compiled._native.export(rows, None) for _, _, rows in by_table.values()]
        del exported, by_table


@pytest.mark.parametrize("spec, error", [
    (("i", "column", "message"), TypeError),
    (("s", "column", "severityLevel"), TypeError),
    (("s", "column", "noSuchColumn"), ValueError),
    (("i", "column", ("severityLevel", "x")), ValueError),
    (("x", "null", None), ValueError),
    (("s", "nowhere", None), ValueError),
])
def test_a_layout_the_export_cannot_fill_is_refused(spec, error):
    with pytest.raises(error):
        compiled._native.set_layout("traces", (spec,))
    assert compiled.read_body(gzip.decompress(batch_body("key-a", "op", 5)), ROUTING) is not None  # layout kept


def test_memory_is_returned():
    """Every buffer of a body's tables is freed once its tables are: RSS stays flat over many bodies."""
    body = gzip.decompress(batch_body("key-a", "op", 6))
    for _ in range(100):
        compiled.read_body(body, ROUTING)
    before = _rss()
    for _ in range(1500):
        compiled.read_body(body, ROUTING)
    assert _rss() - before < 32 * 2**20  # a leak of this body's buffers would be ~1 GB


def _rss() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * 4096


def test_an_extension_built_from_older_sources_is_not_used(monkeypatch):
    """A stale build (its prepare() answers in another shape) leaves bodies to the Python path."""
    stale = types.ModuleType("collector.ingest._cenvelope")
    stale.prepare = compiled._native.prepare  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "collector.ingest._cenvelope", stale)
    monkeypatch.setattr(sys.modules["collector.ingest"], "_cenvelope", stale)
    assert compiled._load() is None
