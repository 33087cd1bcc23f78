"""The fast path of ingestion: the common envelopes mapped to Arrow a column at a time.

Most of what SDKs send is traces, requests, dependencies, events and metrics in their plain form. For those,
building a dict per row and then transposing the rows into Arrow columns cost more than the
mapping itself (~17 µs per item in all). Here pyarrow converts the parsed envelopes to one struct
array in a single C++ pass, so the plain string columns (tags, names, urls...) never go through
Python one value at a time. The conversion is strictly typed: a value of another JSON type than
the canonical one fails it, and the whole body then takes the item-by-item mapper
(`envelope.map_envelope`), which is lenient and names the culprit.

What needs judgement (timestamps, durations, severity, customDimensions, measurements) is still
computed per item, by the mapper's own functions (values.py), so both paths store the same values;
the rules of the stored form (item types, tag columns, sized columns, owner columns, the client IP
default) both read from stored_form.py. An item the fast path cannot reproduce exactly goes to the
mapper: another base type, a quirk to correct, sampling, a service unknown or disabled, anything
invalid, anything near the 64 KB cap.
tests/ingest/test_columnar.py checks that both paths store the same rows.
"""

from __future__ import annotations

import sys
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from collector.ingest.cap import ITEM_LIMIT
from collector.ingest.item_ids import item_id_column
from collector.ingest.quirks import metric_table
from collector.ingest.stored_form import (
    ITEM_TYPES,
    NO_CLIENT_IP,
    SIZED_COLUMNS,
    TAG_COLUMNS,
    TAG_LIMIT,
    owner_columns,
)
from collector.ingest.values import (
    ItemError,
    custom_dimensions,
    custom_measurements,
    dumps_dynamic,
    metric_statistics,
    parse_duration,
    parse_time,
    performance_bucket,
)
from collector.store.schema import TABLES

_STRING = pa.string()
_TIMESTAMP = pa.timestamp("us")

_BASE = pa.struct([
    ("message", _STRING), ("id", _STRING), ("name", _STRING), ("url", _STRING), ("source", _STRING),
    ("data", _STRING), ("target", _STRING), ("type", _STRING), ("dependencyTypeName", _STRING),
    ("resultCode", _STRING),
])
_ENVELOPE = pa.struct([
    ("iKey", _STRING),
    ("time", _STRING),
    ("tags", pa.struct([(tag, _STRING) for tag in TAG_COLUMNS])),
    ("data", pa.struct([("baseData", _BASE)])),
])
"""The plain string fields, as the struct pyarrow converts every envelope of a body to. Fields
the mapper must judge are left out: pyarrow ignores keys a struct does not name."""

_TABLE_OF_BASE_TYPE = {
    "MessageData": "traces",
    "RequestData": "requests",
    "RemoteDependencyData": "dependencies",
    "EventData": "customEvents",
    "MetricData": "customMetrics",
}
_BASE_COLUMNS = {
    "traces": {"message": ("message",)},
    "requests": {"id": ("id",), "name": ("name",), "url": ("url",), "source": ("source",)},
    "dependencies": {"id": ("id",), "name": ("name",), "data": ("data",), "target": ("target",),
                     "resultCode": ("resultCode",), "type": ("type", "dependencyTypeName")},
    "customEvents": {"name": ("name",)},
    "customMetrics": {},
}
"""The columns each fast table takes from baseData as they are: column -> its baseData fields, the
first present wins."""
_SEVERITIES = (0, 1, 2, 3, 4)
_UTC_TIME = r"^(?:[1-9]\d{3}|0[1-9]\d\d|00[1-9]\d|000[1-9])-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?Z$"
"""The timestamps SDKs send, which Arrow parses exactly as envelope.parse_time does, in the years
it accepts (1 to 9999: Arrow would also read year 0); a body with any other form has its
timestamps parsed one by one, by parse_time itself."""


@dataclass
class _Columns:
    """The per-item values of one table's fast rows, in the order of `indexes`."""

    indexes: list[int] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    timestamps: list[int] = field(default_factory=list)
    """Empty when the body's timestamps were parsed column-wise."""
    dimensions: list[str] = field(default_factory=list)
    measurements: list[str | None] = field(default_factory=list)
    extras: list[tuple] = field(default_factory=list)
    """Per item, the values of the table's _EXTRA_COLUMNS."""


@dataclass
class FastResult:
    tables: dict[str, pa.Table] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    accepted: int = 0
    rest: list[int] = field(default_factory=list)
    """Indexes of the items left to the item-by-item mapper, ascending."""


def map_fast(items: list[object], routing: dict[str, tuple[str, bool]]) -> FastResult:
    """Map the plain items of a body column-wise; the others are left in `rest`."""
    result = FastResult()
    try:
        envelopes = pa.array(items, type=_ENVELOPE)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError):
        result.rest = list(range(len(items)))
        return result
    fields = _fields_with_values(envelopes)
    if _any_tag_too_long(fields):
        result.rest = list(range(len(items)))
        return result
    timestamps = _timestamps(envelopes.field("time"))
    by_table: dict[str, _Columns] = {}
    for index, item in enumerate(items):
        if not _add_item(index, item, routing, by_table, timestamps is None):
            result.rest.append(index)
    for name, columns in by_table.items():
        result.tables[name] = _table(name, columns, fields, timestamps)
        result.accepted += len(columns.indexes)
        for service, count in Counter(columns.services).items():
            result.stats[(service, "received")] += count
            result.stats[(service, "accepted")] += count
    return result


def _timestamps(times: pa.Array) -> pa.Array | None:
    """Every item's timestamp, parsed column-wise; None unless all are in the usual UTC form."""
    usual = pc.fill_null(pc.match_substring_regex(times, _UTC_TIME), False)
    if not pc.all(usual).as_py():
        return None
    try:
        return pc.cast(times, pa.timestamp("us", tz="UTC")).cast(_TIMESTAMP)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):  # e.g. February 30th: let parse_time say so
        return None


def _any_tag_too_long(fields: dict[str, pa.Array]) -> bool:
    """Whether some tag is longer than the mapper keeps (it cuts them; this path does not)."""
    for column in TAG_COLUMNS.values():
        leaf = fields.get(column)
        if leaf is not None and pc.max(pc.utf8_length(leaf)).as_py() > TAG_LIMIT:
            return True
    return False


def _fields_with_values(envelopes: pa.StructArray) -> dict[str, pa.Array]:
    """The struct's leaves that some item has, by column name: the others stay NULL, and taking
    a table's rows from the leaves it uses is cheaper than from the whole struct."""
    tags = envelopes.field("tags")
    base = envelopes.field("data").field("baseData")
    # flatten(), not field(): an item without tags (or with null) has a null struct there, whose
    # children hold "" that field() would take for values; flatten() makes them null.
    leaves = dict(zip(TAG_COLUMNS.values(), tags.flatten(), strict=True))
    leaves.update((name, base.field(name)) for name in _BASE.names)
    leaves["iKey"] = envelopes.field("iKey")
    return {name: leaf for name, leaf in leaves.items() if leaf.null_count < len(leaf)}


def _add_item(index: int, item: object, routing: dict, by_table: dict[str, _Columns], parse_times: bool) -> bool:
    """Judge one item and add its per-item values; False if the mapper must take it."""
    if item.__class__ is not dict:  # a null item converts to a null struct
        return False
    data = item.get("data")
    if data.__class__ is not dict or item.get("sampleRate") not in (None, 100, 100.0):
        return False
    table = _TABLE_OF_BASE_TYPE.get(data.get("baseType"))
    base = data.get("baseData")
    ikey = item.get("iKey")
    if table is None or base.__class__ is not dict or ikey.__class__ is not str:
        return False
    route = routing.get(ikey.lower())
    if route is None or not route[1]:
        return False
    try:
        dimensions = custom_dimensions(base)
        measurements = None if table == "customMetrics" else dumps_dynamic(custom_measurements(base))
        timestamp = parse_time(item.get("time"), "time") if parse_times else None
        extra = _EXTRA[table](base)
        if extra is None or dimensions.get("custom_dimensions").__class__ is str:
            return False
        dimensions_text = dumps_dynamic(dimensions)
    except ItemError:
        return False
    size = _size(base, table, dimensions_text, measurements, extra)
    if size > ITEM_LIMIT:
        return False
    columns = by_table.get(table)
    if columns is None:
        columns = by_table[table] = _Columns()
    columns.indexes.append(index)
    columns.services.append(route[0])
    if parse_times:
        columns.timestamps.append(timestamp)
    columns.dimensions.append(dimensions_text)
    columns.measurements.append(measurements)
    columns.extras.append(extra)
    return True


def _size(base: dict, table: str, dimensions: str, measurements: str | None, extra: tuple) -> int:
    """What cap.row_size would count for the stored row, computed before there is one."""
    size = len(dimensions) + (len(measurements) if measurements else 0)
    for key in _SIZED_FIELDS[table]:
        value = base.get(key)
        if value is not None:
            size += len(value)
    for column, value in zip(_EXTRA_COLUMNS[table], extra):
        if column in SIZED_COLUMNS:
            size += len(value)
    return size


_SIZED_FIELDS = {
    table: tuple(key for column, keys in columns.items() if column in SIZED_COLUMNS for key in keys)
    for table, columns in _BASE_COLUMNS.items()
}
"""The fields of baseData each fast table stores in a column that cap.row_size counts. Both fields
of a dependency's `type` count when both are there: the over-count can only send an item near the
cap to the mapper, which stores the same row."""


def _trace(base: dict) -> tuple | None:
    severity = base.get("severityLevel")
    if base.get("message").__class__ is not str or not (severity is None or severity.__class__ is int and severity in _SEVERITIES):
        return None
    return (severity,)


def _timed(base: dict) -> tuple | None:
    """duration, performanceBucket and success, as envelope._timed has them; None when the
    duration is not a string or success not a boolean (the mapper's leniency)."""
    duration_text, success = base.get("duration"), base.get("success")
    if duration_text.__class__ is not str or not (success is None or success.__class__ is bool):
        return None
    duration = parse_duration(duration_text, "data.baseData.duration")
    return duration, performance_bucket(duration), success is not False


def _request(base: dict) -> tuple | None:
    code = base["responseCode"] if "responseCode" in base else base.get("resultCode")
    timed = _timed(base)
    # A request with code "0" and duration 0 is azmlinfsrv's: quirks.py corrects it.
    if timed is None or code.__class__ is not str or code == "0":
        return None
    return (*timed, code)


def _event(base: dict) -> tuple | None:
    return () if base.get("name").__class__ is str else None


def _metric(base: dict) -> tuple | None:
    """One metric of the user's (SDK self-telemetry goes to performanceCounters: the mapper's),
    with the values envelope._metric gives it."""
    metrics = base.get("metrics")
    if metrics.__class__ is not list or len(metrics) != 1 or metrics[0].__class__ is not dict:
        return None
    metric = metrics[0]
    name, value = metric.get("name"), metric.get("value")
    if name.__class__ is not str or metric_table(name, {}) != "customMetrics" or value.__class__ not in _NUMBER:
        return None
    if not -_LARGEST <= value <= _LARGEST:  # NaN, infinite, or an integer beyond a double: the mapper says so
        return None
    value = float(value)
    count, low, high, deviation = metric_statistics(metric, "data.baseData.metrics[0]", value)
    return name, value, count, value, low, high, deviation


_NUMBER = (int, float)
_LARGEST = sys.float_info.max
_EXTRA = {"traces": _trace, "requests": _request, "dependencies": _timed, "customEvents": _event, "customMetrics": _metric}
_EXTRA_COLUMNS = {
    "traces": ("severityLevel",),
    "requests": ("duration", "performanceBucket", "success", "resultCode"),
    "dependencies": ("duration", "performanceBucket", "success"),
    "customEvents": (),
    "customMetrics": ("name", "value", "valueCount", "valueSum", "valueMin", "valueMax", "valueStdDev"),
}


def _table(name: str, columns: _Columns, fields: dict[str, pa.Array], timestamps: pa.Array | None) -> pa.Table:
    """The Arrow table of one table's fast rows, in the schema the writer expects."""
    indexes = pa.array(columns.indexes, pa.int64())
    count = len(columns.indexes)

    def take(field_name: str) -> pa.Array | None:
        leaf = fields.get(field_name)
        return None if leaf is None else leaf.take(indexes)

    ikeys = take("iKey")
    services = pa.array(columns.services, _STRING)
    values: dict[str, object] = {
        "timestamp": (
            timestamps.take(indexes) if timestamps is not None
            else pa.array(columns.timestamps, pa.int64()).cast(_TIMESTAMP)
        ),
        "itemType": pa.repeat(pa.scalar(ITEM_TYPES[name], _STRING), count),
        "customDimensions": columns.dimensions,
        "customMeasurements": columns.measurements,
        "iKey": ikeys,
        **owner_columns(services, ikeys),
        "itemId": item_id_column(count),
        "itemCount": pa.repeat(pa.scalar(1, pa.int32()), count),
    }
    for column in TAG_COLUMNS.values():
        values[column] = take(column)
    client_ip = values["client_IP"]
    if client_ip is None:
        values["client_IP"] = pa.repeat(pa.scalar(NO_CLIENT_IP, _STRING), count)
    else:
        values["client_IP"] = pc.fill_null(client_ip, NO_CLIENT_IP)
    for column, keys in _BASE_COLUMNS[name].items():
        values[column] = _first_present(*(take(key) for key in keys))
    for column, extra in zip(_EXTRA_COLUMNS[name], zip(*columns.extras)):
        values[column] = list(extra)
    schema = TABLES[name].incoming_schema
    arrays = [_array(values.get(f.name), f.type, count) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _first_present(*arrays: pa.Array | None) -> pa.Array | None:
    """Per row, the first non-null value of the arrays there are; None when there are none."""
    present = [array for array in arrays if array is not None]
    if len(present) < 2:
        return present[0] if present else None
    return pc.coalesce(*present)


def _array(value: object, arrow_type: pa.DataType, count: int) -> pa.Array:
    if value is None:
        return pa.nulls(count, arrow_type)
    if isinstance(value, list):
        return pa.array(value, arrow_type)
    return value
