"""The row format of DESIGN.md: one JSON object per line, a table's columns by name, `itemType`
naming the table, `timestamp` ISO 8601 UTC, dynamic columns as JSON values. Continuous export
writes it and import reads it, so exported telemetry loads back losslessly."""

from __future__ import annotations

import itertools
import uuid
from typing import Iterator

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from collector.ingest.envelope import ItemError, dumps_dynamic, parse_time
from collector.store.schema import TABLE_BY_ITEM_TYPE, Table

_CHECKS = {
    "string": lambda v: isinstance(v, str),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "real": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
}
_TYPE_NAMES = {"string": "a string", "int": "an integer", "long": "an integer", "real": "a number", "bool": "true or false"}


def item_ids() -> Iterator[str]:
    """Fresh item ids, shaped like App Insights' GUIDs: a random 80-bit prefix per batch, then a
    counter. Unique, and far cheaper than a uuid4 per item."""
    head = _random_head()
    for number in itertools.count():
        yield f"{head}{number:012x}"


def item_id_column(count: int) -> pa.Array:
    """`count` fresh item ids as an Arrow column, shaped as item_ids() makes them (with a prefix of
    its own, so that the two never collide), built by Arrow rather than formatted one by one."""
    numbers = pc.cast(pa.array(np.arange(count, dtype=np.int64)), pa.string())
    return pc.binary_join_element_wise(_random_head(), pc.utf8_lpad(numbers, 12, "0"), "")


def _random_head() -> str:
    random = uuid.uuid4().hex
    return f"{random[0:8]}-{random[8:12]}-{random[12:16]}-{random[16:20]}-"


def row_from_json(obj: object) -> tuple[Table, dict]:
    """The table and stored-form row of one parsed line; ItemError names the offending column."""
    if not isinstance(obj, dict):
        raise ItemError("line", "expected a JSON object")
    item_type = obj.get("itemType")
    table = TABLE_BY_ITEM_TYPE.get(item_type) if isinstance(item_type, str) else None
    if table is None:
        known = ", ".join(sorted(TABLE_BY_ITEM_TYPE))
        raise ItemError("itemType", f"expected one of {known}, got {str(item_type)[:40]!r}")
    columns = {c.name: c for c in table.columns}
    row: dict = {}
    for key, value in obj.items():
        column = columns.get(key)
        if column is None:
            raise ItemError(key, f"unknown column for table {table.name}")
        row[key] = _stored(column.kql_type, value, key)
    if row.get("timestamp") is None:
        raise ItemError("timestamp", "missing")
    return table, row


def _stored(kql_type: str, value: object, key: str) -> object:
    if kql_type == "dynamic":
        return dumps_dynamic(orjson.loads(value) if isinstance(value, str) and value[:1] in "{[" else value)
    if value is None:
        return None
    if kql_type == "datetime":
        return parse_time(value, key)
    if not _CHECKS[kql_type](value):
        raise ItemError(key, f"expected {_TYPE_NAMES[kql_type]}, got {orjson.dumps(value).decode()[:40]}")
    return float(value) if kql_type == "real" else value
