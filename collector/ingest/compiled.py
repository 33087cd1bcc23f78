"""The compiled fast path: a decompressed track body's plain items to Arrow tables in one C pass.

Parsing with orjson, then judging and converting each item in Python, cost ~12 µs per item in
isolation, most of the collector's CPU per item. `_cenvelope` (C through the CPython API, built by
`pip install -e .` where a compiler is present; see setup.py) reads the body's bytes once and
writes the plain items' column values straight into Arrow buffers: no Python object per value,
and customDimensions written as orjson would write it without building the dict first. Each table
then reaches pyarrow whole, through the Arrow C data interface (_cenvelope_arrow.h), its columns
filled as `_layout` says.

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
from typing import Any

import numpy as np
import orjson
import pyarrow as pa

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
    if not hasattr(_cenvelope, "set_layout"):
        log.warning("ingestion: the compiled fast path was built from older sources (run `pip install -e .`); "
                    "bodies take the Python path")
        return None
    return _cenvelope


_native = _load()

_STRING = pa.string()


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
    for name, (index, one_ikey, rows) in by_table.items():
        table, left = _routed_table(name, index, one_ikey, rows, routing, stats)
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
    name: str, index: bytes, one_ikey: str | None, rows: object, routing: dict, stats: Counter,
) -> tuple[pa.Table | None, list[int]]:
    """The table of the rows whose service takes them, and the indexes of the others (unknown
    or disabled services: the Python path counts and answers them). `one_ikey`: the iKey all the
    rows share (an SDK's batch has one), None if they differ. `rows`: the parse's table, for
    _table."""
    if one_ikey is not None:
        route = routing.get(one_ikey.lower())
        if route is None or not route[1]:
            return None, np.frombuffer(index, dtype=np.int64).tolist()
        table = _table(name, rows, route[0])
        _count_taken(stats, route[0], table.num_rows)
        return table, []
    table = _table(name, rows, None)
    encoded = table.column(_IKEY_COLUMN).chunk(0).dictionary_encode()
    routes = [routing.get(key.lower()) for key in encoded.dictionary.to_pylist()]
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    taken = np.array([route is not None and route[1] for route in routes], dtype=bool)[codes]
    services = pa.array([route[0] if route else None for route in routes], _STRING).take(encoded.indices)
    for code, count in enumerate(np.bincount(codes, minlength=len(routes))):
        route = routes[code]
        if count and route is not None and route[1]:
            _count_taken(stats, route[0], int(count))
    for column in _SERVICE_COLUMNS:
        at = table.schema.get_field_index(column)
        table = table.set_column(at, table.schema.field(at), services)
    if taken.all():
        return table, []
    left = np.frombuffer(index, dtype=np.int64)[~taken].tolist()
    kept = table.filter(pa.array(taken))
    return (kept if kept.num_rows else None), left


def _count_taken(stats: Counter, service: str, rows: int) -> None:
    stats[(service, "received")] += rows
    stats[(service, "accepted")] += rows


def _table(name: str, rows: object, service: str | None) -> pa.Table:
    """The Arrow table of one table's rows, in the schema the writer expects, its columns filled in
    C as _layout says (`service`: the service's columns' value; None leaves them null). One import
    through the Arrow C data interface: wrapping each column's buffers here cost ~100 µs per table
    and body (see _cenvelope_arrow.h). `_import_from_c` (pyarrow's, since 0.17) takes the schema
    object as it is; the public capsule protocol would export and parse it again, ~35 µs a table."""
    array, address = _native.export(rows, service)  # `array`, a capsule, holds the struct at `address`
    batch = pa.RecordBatch._import_from_c(address, TABLES[name].incoming_schema)
    del array  # the import moved the struct's contents into the batch: the capsule frees the struct alone
    return pa.Table.from_batches([batch])


_SERVICE = ("service", None)
_IKEY = ("column", "iKey")
_OWNER = owner_columns(_SERVICE, _IKEY)
_SERVICE_COLUMNS = tuple(column for column, source in _OWNER.items() if source is _SERVICE)
_IKEY_COLUMN = next(column for column, source in _OWNER.items() if source is _IKEY)
_KINDS = {pa.string(): "s", pa.int32(): "i", pa.timestamp("us"): "l", pa.float64(): "d", pa.bool_(): "b"}


def _layout(name: str) -> tuple[tuple[str, str, object], ...]:
    """What fills each column of a table's schema, in its order, as (kind, source, argument), for
    _cenvelope.set_layout: the stored form's rules (stored_form.py), as the Python path applies
    them (columnar.py), on the columns the C parse writes (`_native.COLUMNS`, by their names)."""
    sources: dict[str, Any] = {column: ("column", column) for column in _native.COLUMNS}
    sources.update(_OWNER, itemType=("text", ITEM_TYPES[name]), itemCount=("int32", 1),
                   client_IP=("column", ("client_IP", NO_CLIENT_IP)))
    if name == "customMetrics":
        value = sources["value"]
        sources.update(valueSum=value, valueMin=value, valueMax=value, valueStdDev=("float64", 0.0))
    return tuple((_KINDS[field.type], *sources.get(field.name, ("null", None)))
                 for field in TABLES[name].incoming_schema)


def _set_layouts() -> None:
    """Tells the extension what fills each column of the tables it parses, once per process."""
    for name in _native.TABLES:
        _native.set_layout(name, _layout(name))


if _native is not None:
    _set_layouts()
