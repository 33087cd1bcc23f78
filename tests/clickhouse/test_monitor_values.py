"""What a monitor run reads out of `modelData` is the same on both stores, value by value: the DuckDB
store's `json_transform` (store/monitors.py) and the ClickHouse store's JSONExtract
(store/clickhouse/monitors.py) over the same rows, including every JSON shape a collected value can
take. ClickHouse here is the stand-in (chdb behind ClickHouse's HTTP interface: no ClickHouse server
can run on these machines)."""

from __future__ import annotations

import math
from concurrent.futures import Future
from datetime import datetime, timedelta

import orjson
import pyarrow as pa
import pytest
from store_helpers import connection, migrated_url

from collector.store.clickhouse.monitors import MonitorState
from collector.store.database import Store
from collector.store.schema import SEQ_COLUMN, TABLES

SERVICE = "values"
AT = datetime(2026, 3, 1, 12)
ROWS = [
    {"n": 1.5, "c": "x", "odd name.with dots": 1, "q`uote's": "a"},
    {"n": "3.5", "c": 1, "odd name.with dots": " 4 ", "q`uote's": "b"},
    {"n": "abc", "c": 100.0, "odd name.with dots": "1e3"},
    {"n": True, "c": True, "odd name.with dots": False},
    {"n": None, "c": None, "odd name.with dots": "\t5"},
    {"n": [1], "c": {"x": 1}, "odd name.with dots": "inf"},
    {"n": {"x": 1}, "c": [1, "a"], "odd name.with dots": ""},
    {"other": 1},
    {"n": -0.0, "c": -0.0, "odd name.with dots": 12345678901234567890},
    {"n": 2, "c": "é\"\\", "odd name.with dots": "true"},
    {"n": 1e-300, "c": 0.1, "odd name.with dots": ".5"},
]
"""Numbers, numbers as text (with blanks), text, booleans, null, arrays, objects, absent keys, big
integers, whole-number doubles in a categorical feature, escapes, and feature names that need quoting."""
NOT_OBJECTS = ["[1, 2]", '"text"', "3", "null"]
"""Rows whose `data` is not an object: they have no features, though they count as rows."""


class _NoWrites:
    def write(self, *args, **kwargs) -> Future:
        raise AssertionError("reading collected values writes nothing")


def _data_rows() -> list[str]:
    return [orjson.dumps(row).decode() for row in ROWS] + NOT_OBJECTS


def _arrow(datas: list[str]) -> pa.Table:
    micros = int((AT - datetime(1970, 1, 1)).total_seconds() * 1_000_000)
    return TABLES["modelData"].to_arrow([{"timestamp": micros + i, "collection": "model_inputs", "data": data,
                                          "_service": SERVICE, "itemType": "modelData"} for i, data in enumerate(datas)])


@pytest.fixture(scope="module")
def stores(clickhouse_server, tmp_path_factory):
    duck = Store(tmp_path_factory.mktemp("values") / "data")
    duck.writer.write({"modelData": _arrow(_data_rows())}).result()
    conn = connection(clickhouse_server, migrated_url(clickhouse_server, "values"))
    table = _arrow(_data_rows())
    conn.client().insert_arrow("modelData", table.append_column(SEQ_COLUMN, pa.array(range(table.num_rows), pa.int64())),
                               database=conn.database)
    yield duck.monitors, MonitorState(conn, _NoWrites())  # type: ignore[arg-type]
    duck.close()


def _same(left: object, right: object) -> bool:
    if isinstance(left, float) and isinstance(right, float):
        return (math.isnan(left) and math.isnan(right)) or left == right and math.copysign(1, left) == math.copysign(1, right)
    return left == right


@pytest.mark.parametrize("numerical, categorical", [
    (["n", "odd name.with dots"], ["c", "q`uote's"]),
    ([], ["n", "c", "odd name.with dots", "q`uote's", "absent"]),
    (["c", "q`uote's", "absent"], []),
    ([], []),
])
def test_collected_values_are_the_same_on_both_stores(stores, numerical, categorical):
    duck, click = stores
    window = (AT - timedelta(minutes=1), AT + timedelta(minutes=1))
    expected = duck.collected(SERVICE, "model_inputs", *window, numerical, categorical)
    got = click.collected(SERVICE, "model_inputs", *window, numerical, categorical)
    assert got.num_rows == expected.num_rows == len(ROWS) + len(NOT_OBJECTS)
    if numerical or categorical:
        assert got.schema.names == expected.schema.names
        for name in expected.schema.names:
            pairs = list(zip(expected.column(name).to_pylist(), got.column(name).to_pylist()))
            assert all(_same(want, have) for want, have in pairs), (name, pairs)


def test_feature_names_and_an_empty_window_are_the_same_on_both_stores(stores):
    duck, click = stores
    window = (AT - timedelta(minutes=1), AT + timedelta(minutes=1))
    assert click.feature_names(SERVICE, "model_inputs", *window) == duck.feature_names(SERVICE, "model_inputs", *window)
    empty = (AT + timedelta(hours=1), AT + timedelta(hours=2))
    expected = duck.collected(SERVICE, "model_inputs", *empty, ["n"], ["c"])
    got = click.collected(SERVICE, "model_inputs", *empty, ["n"], ["c"])
    assert got.num_rows == expected.num_rows == 0 and got.schema == expected.schema
