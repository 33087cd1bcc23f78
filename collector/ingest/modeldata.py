"""Collected model data (POST /api/modeldata) made into `modelData` rows.

A scoring wrapper sends one JSON object per line, one per `Collector.collect(df)` call or payload
logged (scoring/modeldata.py builds them):
`{"collection", "time", "correlationId", "operationId", "modelVersion", "deployment", "data", ...}`.
`data` holds the DataFrame as `df.to_json(orient="records")` gives it: a list of row objects, each
becoming one row (`rowIndex` its position). Anything else (a dict, a string, a list of scalars: a
request body that is not tabular) lands whole as one row without `rowIndex` and is counted as
`modelData:non-tabular`, rather than dropped. A bad item is reported by its index with a 400, and
spoils nothing else; the answer has the track protocol's shape, so the wrapper's sender reads it as
it reads /v2.1/track's.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import orjson
import pyarrow as pa

from collector.store.schema import SERVICE_COLUMN, TABLES

MAX_ITEMS = 10_000
MAX_ROWS_PER_ITEM = 100_000
"""One collect() of more rows is refused (400): such a frame is a batch job's, to be split."""
MAX_TEXT = 256
_SEGMENT = re.compile(r"^(?!\.{1,2}$)[A-Za-z0-9_.-]{1,128}$")
"""collection, endpoint and deployment name folders in Azure ML's export layout."""

_FIELDS = {"collection", "time", "correlationId", "operationId", "modelVersion", "endpoint", "deployment", "data",
           "contentType", "dataType", "agent", "instance"}
_TABLE = TABLES["modelData"]
NON_TABULAR = "modelData:non-tabular"


class CollectedError(ValueError):
    """An item that cannot be stored; the message names the field."""


@dataclass
class PreparedModelData:
    received: int = 0
    rows: list[dict] = field(default_factory=list)
    errors: list[dict] = field(default_factory=list)
    stats: Counter = field(default_factory=Counter)

    @property
    def accepted(self) -> int:
        return self.received - len(self.errors)

    def table(self) -> pa.Table:
        return _TABLE.to_arrow(self.rows)

    def answer(self) -> tuple[dict, int]:
        status = 200 if not self.errors else (206 if self.accepted else 400)
        return {"itemsReceived": self.received, "itemsAccepted": self.accepted, "rowsStored": len(self.rows),
                "errors": self.errors}, status


def prepare_collected(body: bytes, service: str) -> PreparedModelData:
    """The rows of a body of collected items for `service` (whose name is the default endpoint)."""
    prepared = PreparedModelData()
    for raw in body.split(b"\n"):
        if not raw.strip():
            continue
        index = prepared.received
        prepared.received += 1
        if index >= MAX_ITEMS:
            prepared.errors.append({"index": index, "statusCode": 400, "message": f"more than {MAX_ITEMS} items in one body"})
            continue
        try:
            rows = _rows(orjson.loads(raw), service)
        except (orjson.JSONDecodeError, CollectedError) as error:
            prepared.errors.append({"index": index, "statusCode": 400, "message": str(error)})
            continue
        if rows[0].get("rowIndex") is None:
            prepared.stats[(service, NON_TABULAR)] += 1
        prepared.rows.extend(rows)
    prepared.stats[(service, "modelData:rows")] += len(prepared.rows)
    return prepared


def _rows(item: object, service: str) -> list[dict]:
    if not isinstance(item, dict):
        raise CollectedError("an item must be a JSON object")
    unknown = sorted(set(item) - _FIELDS)
    if unknown:
        raise CollectedError(f"unknown field {unknown[0]!r}; expected some of {', '.join(sorted(_FIELDS))}")
    collection = _segment(item, "collection", required=True)
    if "data" not in item:
        raise CollectedError("'data' is missing")
    data = _data(item["data"], item.get("contentType"))
    common = {
        "timestamp": _micros(item.get("time")),
        "collection": str(collection).lower(),
        "correlationId": _text(item, "correlationId"),
        "operation_Id": _text(item, "operationId"),
        "modelVersion": _text(item, "modelVersion"),
        "endpoint": _segment(item, "endpoint") or service,
        "deployment": _segment(item, "deployment") or "default",
        "itemType": "modelData",
        SERVICE_COLUMN: service,
    }
    if _tabular(data):
        if len(data) > MAX_ROWS_PER_ITEM:
            raise CollectedError(f"'data' has {len(data)} rows; at most {MAX_ROWS_PER_ITEM} per item")
        return [{**common, "rowIndex": index, "data": orjson.dumps(row).decode(), "itemId": uuid.uuid4().hex}
                for index, row in enumerate(data)]
    return [{**common, "rowIndex": None, "data": orjson.dumps(data).decode(), "itemId": uuid.uuid4().hex}]


def _tabular(data: object) -> bool:
    return isinstance(data, list) and bool(data) and all(isinstance(row, dict) for row in data)


def _data(value: object, content_type: object) -> object:
    """JSON text (what the library posts) is parsed; text that is not JSON stays text."""
    if isinstance(value, str) and (content_type is None or "json" in str(content_type)):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _segment(item: dict, name: str, required: bool = False) -> str | None:
    text = _text(item, name, required)
    if text is not None and not _SEGMENT.match(text):
        raise CollectedError(f"'{name}' {text[:40]!r}: 1 to 128 letters, digits, '_', '.' or '-'")
    return text


def _text(item: dict, name: str, required: bool = False) -> str | None:
    value = item.get(name)
    if value is None or value == "":
        if required:
            raise CollectedError(f"'{name}' is missing")
        return None
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise CollectedError(f"'{name}' must be a string")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise CollectedError(f"'{name}' is longer than {MAX_TEXT} characters")
    return text


def _micros(value: object) -> int:
    """Epoch microseconds from seconds (the library's `ce-time`) or ISO 8601; now when absent."""
    if value is None:
        return int(datetime.now(UTC).timestamp() * 1_000_000)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return int(value * 1_000_000)
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise CollectedError(f"'time' {value[:40]!r} is not ISO 8601 or epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return int(moment.timestamp() * 1_000_000)
    raise CollectedError("'time' must be ISO 8601 text or epoch seconds")
