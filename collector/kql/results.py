"""Typed, JSON-ready results: the columns named with KQL types and every cell as Kusto serializes it.

azure-monitor-query passes every cell through untouched except datetimes, so what we emit is what
the user's DataFrame holds: numbers and bools native, datetimes ISO 8601 UTC with `Z`, timespans in
Kusto's `[-][d.]hh:mm:ss[.fffffff]`, dynamic values as JSON text (a dynamic string as the string
itself, as Kusto does), guids and decimals as strings.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import orjson
from duckdb_kql.types import kusto_type

_FETCH_CHUNK = 10_000


@dataclass
class QueryResult:
    """One answered query. `truncated` says the row or byte cap cut the result short."""

    columns: list[tuple[str, str]]
    rows: list[list]
    truncated: bool = False
    visualization: dict | None = None
    sql: str = ""
    statistics: dict = field(default_factory=dict)


def kql_type(duckdb_type: object) -> str:
    """The KQL type name a DuckDB result column reports as."""
    return _kql_type(str(duckdb_type))


@lru_cache(maxsize=256)
def _kql_type(duckdb_type: str) -> str:
    return kusto_type(duckdb_type)


@lru_cache(maxsize=256)
def _typing(types: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The KQL types of a result's DuckDB *types* and the (column, converter) pairs its rows need;
    cached by the type list: typing 31 columns one by one was a tenth of a small query's Python."""
    converters = map(_column_converter, types)
    return (tuple(map(_kql_type, types)),
            tuple((i, conv) for i, conv in enumerate(converters) if conv is not None))


@lru_cache(maxsize=256)
def _column_converter(duckdb_type: str) -> Callable[[Any], Any] | None:
    """The cell converter for a DuckDB type; None where DuckDB's Python value is already the cell."""
    conv = _converter(_kql_type(duckdb_type), duckdb_type)
    if conv is _identity or (conv is _string and duckdb_type == "VARCHAR"):
        return None
    return conv


def collect(cursor: Any, max_rows: int, max_bytes: int) -> tuple[list[tuple[str, str]], list[list], bool]:
    """Fetch at most *max_rows* rows / ~*max_bytes* of JSON from an executed cursor.

    Cells are converted only in the columns that need it, and the JSON size is measured a chunk
    at a time; only the chunk that crosses a cap is walked row by row, so the cut is where it
    always was (each row's JSON plus a separator).
    """
    description = cursor.description or []
    kql_types, active = _typing(tuple(str(d[1]) for d in description))
    columns = [(d[0], kql) for d, kql in zip(description, kql_types, strict=True)]
    rows: list[list] = []
    size = 0
    while True:
        chunk = cursor.fetchmany(_FETCH_CHUNK)
        if not chunk:
            return columns, rows, False
        converted = [_convert(raw, active) for raw in chunk]
        chunk_size = len(orjson.dumps(converted, default=str)) - 2 + 1  # [a,b] -> a\nb\n
        if len(rows) + len(converted) <= max_rows and size + chunk_size <= max_bytes:
            rows.extend(converted)
            size += chunk_size
            if len(chunk) < _FETCH_CHUNK:  # the last one: asking DuckDB again was a small query's 0.1 ms
                return columns, rows, False
            continue
        for row in converted:
            size += len(orjson.dumps(row, default=str)) + 1
            if len(rows) >= max_rows or size > max_bytes:
                return columns, rows, True
            rows.append(row)


def _convert(raw: tuple, active: tuple[tuple[int, Callable[[Any], Any]], ...]) -> list:
    row = list(raw)
    for i, conv in active:
        value = row[i]
        if value is not None:
            row[i] = conv(value)
    return row


def _converter(kql: str, duckdb_type: str) -> Callable[[Any], Any]:
    if kql == "datetime":
        return _timestamp_text if duckdb_type == "TIMESTAMP" else datetime_text
    if kql == "timespan":
        return timespan_text
    if kql == "dynamic":
        return _json_dynamic if duckdb_type.upper() == "JSON" else _native_dynamic
    if kql == "real":
        return _real
    if kql in ("guid", "decimal"):
        return str
    if kql == "string":
        return _string
    return _identity


def _identity(value: Any) -> Any:
    return value


def _string(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return value if isinstance(value, str) else str(value)


def _real(value: Any) -> Any:
    value = float(value)
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def datetime_text(value: Any) -> str:
    """`2026-01-01T00:00:00Z`, with microseconds when there are any."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat(timespec="microseconds" if value.microsecond else "seconds") + "Z"
    if isinstance(value, date):
        return value.isoformat() + "T00:00:00Z"
    return str(value)


def _timestamp_text(value: Any) -> str:
    """datetime_text of a TIMESTAMP column's value: a naive datetime, whose default isoformat()
    already has microseconds only when there are any (half the time of the general form)."""
    if type(value) is datetime and value.tzinfo is None:
        return value.isoformat() + "Z"
    return datetime_text(value)


def timespan_text(value: Any) -> str:
    """Kusto's timespan text: `[-][d.]hh:mm:ss[.fffffff]`."""
    if isinstance(value, time):
        value = timedelta(hours=value.hour, minutes=value.minute, seconds=value.second,
                          microseconds=value.microsecond)
    if not isinstance(value, timedelta):
        return str(value)
    micros = value // timedelta(microseconds=1)
    sign = "-" if micros < 0 else ""
    micros = abs(micros)
    seconds, micro = divmod(micros, 1_000_000)
    minutes, second = divmod(seconds, 60)
    hours, minute = divmod(minutes, 60)
    days, hour = divmod(hours, 24)
    text = f"{sign}{days}." if days else sign
    text += f"{hour:02d}:{minute:02d}:{second:02d}"
    return text + (f".{micro * 10:07d}" if micro else "")


def _json_dynamic(value: Any) -> Any:
    """DuckDB JSON text as is; a JSON string or JSON null unwrapped, as Kusto shows them."""
    if not isinstance(value, str):
        return _native_dynamic(value)
    if value.startswith('"'):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    if value == "null":
        return None
    if value[:1] in "[{":
        # Normalised to compact JSON, as Kusto prints it (DuckDB keeps the input's spacing).
        try:
            return orjson.dumps(orjson.loads(value)).decode()
        except orjson.JSONDecodeError:
            return value
    return value


def _native_dynamic(value: Any) -> str:
    """A DuckDB LIST/STRUCT/MAP (e.g. from make_list) as compact JSON text."""
    return orjson.dumps(_jsonable(value), default=_json_default).decode()


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, str) and value[:1] in "[{":
        # JSON values nested in a DuckDB list arrive as text; keep them as JSON, not strings.
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return datetime_text(value)
    if isinstance(value, (timedelta, time)):
        return timespan_text(value)
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)
