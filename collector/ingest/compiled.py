"""The compiled fast path: a decompressed track body's plain items to Arrow tables in one C pass.

Parsing with orjson, then judging and converting each item in Python, cost ~12 µs per item in
isolation, most of the collector's CPU per item. `_cenvelope` (C through the CPython API, built by
`pip install -e .` where a compiler is present; see setup.py) reads the body's bytes once and
writes the plain items' column values straight into Arrow buffers: no Python object per value,
and customDimensions written as orjson would write it without building the dict first.

It takes only what it can store exactly as the Python path does (the reference: columnar.py and
envelope.py), and leaves every other item, by its place in the body, to that path: an odd type,
a quirk, sampling, anything invalid or near the 64 KB cap, and the items of a service unknown or
disabled (whose counters and errors the Python path keeps). Where it cannot read a body exactly as
orjson would (invalid JSON, lone surrogates, huge numbers), it declines the whole body.
tests/ingest/test_compiled_path.py holds the two paths to the same rows, answers and counters.

Without the extension, or with INSIGHTS_INGEST_PURE_PYTHON=1, every body takes the Python path.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from functools import lru_cache
from typing import Any

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from collector.ingest.item_ids import random_head
from collector.ingest.stored_form import ITEM_TYPES, NO_CLIENT_IP, owner_columns
from collector.store.schema import TABLES

log = logging.getLogger(__name__)

PURE_PYTHON_ENV = "INSIGHTS_INGEST_PURE_PYTHON"


def _load() -> Any:
    if os.environ.get(PURE_PYTHON_ENV, "").strip().lower() in ("1", "true", "yes"):
        log.info("ingestion: the compiled fast path is off (%s); bodies take the Python path", PURE_PYTHON_ENV)
        return None
    try:
        from collector.ingest import _cenvelope  # type: ignore[attr-defined]
    except ImportError:
        log.warning("ingestion: the compiled fast path is not built (no C compiler at install?); "
                 "bodies take the Python path, at about twice the CPU per item")
        return None
    return _cenvelope


_native = _load()

_STRING = pa.string()
_TIMESTAMP = pa.timestamp("us")
_FLOAT = pa.float64()
_INT32 = pa.int32()


def available() -> bool:
    """Whether bodies take the compiled path in this process."""
    return _native is not None


def read_body(data: bytes, routing: dict[str, tuple[str, bool]]) -> tuple[int, dict[str, pa.Table], Counter, list[int], bytes] | None:
    """The body's items taken by the compiled path, as (item count, Arrow tables, counters, the
    indexes of the items left to the Python path (ascending), their spans); None if the body
    as a whole is the Python path's (or the extension is absent)."""
    if _native is None:
        return None
    parsed = _native.prepare(data, random_head())
    if parsed is None:
        return None
    spans, rest, by_table = parsed
    stats: Counter = Counter()
    tables = {}
    for name, (count, index, timestamps, columns, one_ikey) in by_table.items():
        table, left = _routed_table(name, count, index, timestamps, columns, one_ikey, routing, stats)
        if table is not None:
            tables[name] = table
        rest.extend(left)
    if len(rest) > 1:
        rest.sort()
    return len(spans) // 16, tables, stats, rest, spans


def items_at(data: bytes, spans: bytes, indexes: list[int]) -> list[object]:
    """The parsed items at these indexes of a body read by read_body."""
    bounds = np.frombuffer(spans, dtype=np.int64)
    return [orjson.loads(data[bounds[2 * i]:bounds[2 * i + 1]]) for i in indexes]


def _routed_table(
    name: str, count: int, index: bytes, timestamps: bytes, columns: dict, one_ikey: str | None, routing: dict,
    stats: Counter,
) -> tuple[pa.Table | None, list[int]]:
    """The table of the rows whose service takes them, and the indexes of the others (unknown
    or disabled services: the Python path counts and answers them). `one_ikey`: the iKey all the
    rows share (an SDK's batch has one), None if they differ."""
    ikeys = _strings(columns["iKey"], count)
    if one_ikey is not None:
        route = routing.get(one_ikey.lower())
        if route is None or not route[1]:
            return None, np.frombuffer(index, dtype=np.int64).tolist()
        _count_taken(stats, route[0], count)
        return _table(name, count, timestamps, columns, ikeys, _repeated(route[0], _STRING, count)), []
    encoded = ikeys.dictionary_encode()
    routes = [routing.get(key.lower()) for key in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    taken = np.array([route is not None and route[1] for route in routes], dtype=bool)[codes]
    services = pa.array([route[0] if route else None for route in routes], _STRING).take(encoded.indices)
    for code, rows in enumerate(np.bincount(codes, minlength=len(routes))):
        route = routes[code]
        if rows and route is not None and route[1]:
            _count_taken(stats, route[0], int(rows))
    table = _table(name, count, timestamps, columns, ikeys, services)
    if taken.all():
        return table, []
    left = np.frombuffer(index, dtype=np.int64)[~taken].tolist()
    kept = table.filter(pa.array(taken))
    return (kept if kept.num_rows else None), left


def _count_taken(stats: Counter, service: str, rows: int) -> None:
    stats[(service, "received")] += rows
    stats[(service, "accepted")] += rows


def _table(name: str, count: int, timestamps: bytes, columns: dict, ikeys: pa.Array, services: pa.Array) -> pa.Table:
    """The Arrow table of one table's rows, in the schema the writer expects."""
    values: dict[str, pa.Array | None] = {
        "timestamp": pa.Array.from_buffers(_TIMESTAMP, count, [None, pa.py_buffer(timestamps)]),
        "itemType": _repeated(ITEM_TYPES[name], _STRING, count),
        "itemCount": _repeated(1, _INT32, count),
        **owner_columns(services, ikeys),
    }
    for column, value in columns.items():
        if column not in values:
            values[column] = _column(column, value, count)
    client_ip = values.get("client_IP")
    values["client_IP"] = (_repeated(NO_CLIENT_IP, _STRING, count) if client_ip is None
                           else pc.fill_null(client_ip, NO_CLIENT_IP))
    if name == "customMetrics":
        value = values["value"]
        values.update(valueSum=value, valueMin=value, valueMax=value,
                      valueStdDev=_repeated(0.0, _FLOAT, count))
    nulls = _null_columns(name, count)
    arrays = [nulls[column] if (given := values.get(column)) is None else given for column in _FIELDS[name]]
    return pa.Table.from_arrays(arrays, schema=TABLES[name].incoming_schema)


def _column(column: str, value: Any, count: int) -> pa.Array | None:
    if value is None:
        return None
    if column == "severityLevel":
        bits, data, nulls = value
        return pa.Array.from_buffers(_INT32, count, [bits and pa.py_buffer(bits), pa.py_buffer(data)], null_count=nulls)
    if column in ("duration", "value"):
        return pa.Array.from_buffers(_FLOAT, count, [None, pa.py_buffer(value)])
    if column == "valueCount":
        return pa.Array.from_buffers(_INT32, count, [None, pa.py_buffer(value)])
    if column == "success":
        return pa.Array.from_buffers(pa.bool_(), count, [None, pa.py_buffer(value)])
    return _strings(value, count)


def _strings(value: Any, count: int) -> pa.Array:
    if value is None:
        return pa.nulls(count, _STRING)
    bits, offsets, data, nulls = value
    buffers = [bits and pa.py_buffer(bits), pa.py_buffer(offsets), pa.py_buffer(data)]
    return pa.Array.from_buffers(_STRING, count, buffers, null_count=nulls)


@lru_cache(maxsize=1024)
def _repeated(value: object, arrow_type: pa.DataType, count: int) -> pa.Array:
    """A column of one value, made once per value, type and length (as `_null_columns`)."""
    return pa.repeat(pa.scalar(value, arrow_type), count)


@lru_cache(maxsize=256)
def _null_columns(name: str, count: int) -> dict[str, pa.Array]:
    """A column of nulls for each of a table's columns, made once per table and length: most of a
    table's ~40 columns are absent from a batch, and making each anew cost ~1 µs per item of the
    body (Arrow arrays are immutable, so the tables may share them)."""
    return {field.name: pa.nulls(count, field.type) for field in TABLES[name].incoming_schema}


_FIELDS = {name: tuple(field.name for field in table.incoming_schema) for name, table in TABLES.items()}
"""Each table's column names in its schema's order: reading them off a pyarrow schema makes a
Field object per column and call (~1 µs each)."""
