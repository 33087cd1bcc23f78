"""Parsing the values of an envelope: timestamps, durations, severities, properties, JSON types.

Shared by the item-by-item mapper (envelope.py), the column-wise fast path (columnar.py), the
quirks corrections (quirks.py) and import (rows.py); what cannot be parsed raises an ItemError
naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import orjson


class ItemError(ValueError):
    """One envelope is invalid; `field` is the JSON path of the culprit."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


EPOCH = datetime(1970, 1, 1)
EPOCH_UTC = EPOCH.replace(tzinfo=UTC)


def parse_time(value: object, field: str) -> int:
    """Microseconds since the epoch, UTC; a timestamp without offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise ItemError(field, "missing: expected an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ItemError(field, f"not an ISO 8601 timestamp: {value[:64]!r}") from None
    return (moment - (EPOCH if moment.tzinfo is None else EPOCH_UTC)) // _MICROSECOND


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1) - EPOCH


_DURATION = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


def parse_duration(value: object, field: str) -> float:
    """Milliseconds from 'd.hh:mm:ss.fffffff' (or a bare number of ms, which some SDKs send)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ItemError(field, f"expected a duration like '0.00:00:01.500', got {json_type(value)}")
    match = _DURATION.match(value)
    if not match:
        raise ItemError(field, f"not a duration of the form d.hh:mm:ss.fffffff: {value[:64]!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86_400 + int(hours) * 3_600 + int(minutes) * 60 + int(seconds)
    frac = float("0." + fraction) if fraction else 0.0
    return (total + frac) * 1000.0


_BUCKETS = (
    (250, "<250ms"),
    (500, "250ms-500ms"),
    (1_000, "500ms-1sec"),
    (3_000, "1sec-3sec"),
    (7_000, "3sec-7sec"),
    (15_000, "7sec-15sec"),
    (30_000, "15sec-30sec"),
    (60_000, "30sec-1min"),
    (120_000, "1min-2min"),
    (300_000, "2min-5min"),
)


def performance_bucket(duration_ms: float) -> str:
    for limit, name in _BUCKETS:
        if duration_ms < limit:
            return name
    return ">=5min"


_SEVERITY_NAMES = {"verbose": 0, "information": 1, "warning": 2, "error": 3, "critical": 4}


def severity(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) <= 4:
            return int(text)
        if text.lower() in _SEVERITY_NAMES:
            return _SEVERITY_NAMES[text.lower()]
    raise ItemError(field, f"expected 0-4 or Verbose/Information/Warning/Error/Critical, got {str(value)[:32]!r}")


_KEPT_AS_IS = frozenset((str, dict, list, type(None)))


def custom_dimensions(base: dict) -> dict:
    """baseData.properties as customDimensions: scalars as strings (as App Insights stores them),
    objects and arrays kept as JSON so that `customDimensions.Contents.input` can reach inside."""
    properties = base.get("properties")
    if properties is None:
        return {}
    for value in as_object(properties, "data.baseData.properties").values():
        if value.__class__ not in _KEPT_AS_IS:
            break
    else:
        return properties  # the usual case: already as stored
    out = {}
    for key, value in properties.items():
        if isinstance(value, str) or isinstance(value, (dict, list)) or value is None:
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "True" if value else "False"
        else:
            out[key] = str(value)
    return out


def custom_measurements(base: dict) -> dict | None:
    """baseData.measurements as numbers; None (NULL) when there are none."""
    measurements = base.get("measurements")
    if not measurements:
        return None
    out = {}
    for key, value in as_object(measurements, "data.baseData.measurements").items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ItemError(f"data.baseData.measurements.{key}", f"expected a number, got {json_type(value)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise ItemError(f"data.baseData.measurements.{key}", f"expected a number, got {value[:32]!r}") from None
    return out


def as_object(value: object, field: str) -> dict:
    """The value as a JSON object; ItemError naming `field` otherwise."""
    if not isinstance(value, dict):
        what = "missing" if value is None else f"expected a JSON object, got {json_type(value)}"
        raise ItemError(field, what)
    return value


def as_string(value: object, field: str, required: bool = False) -> str | None:
    """The value as a string: numbers and booleans as their text, since some SDKs send them so."""
    if value is None:
        if required:
            raise ItemError(field, "missing")
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise ItemError(field, f"expected a string, got {json_type(value)}")


def as_number(value: object, field: str, required: bool = False, default: float | None = None) -> float | None:
    """The value as a float; a boolean is not a number; `default` when absent."""
    if value is None:
        if required:
            raise ItemError(field, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemError(field, f"expected a number, got {json_type(value)}")
    return float(value)


def json_type(value: object) -> str:
    """The JSON type of a value, as error messages name it."""
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def dumps_dynamic(value: object) -> str | None:
    """A dynamic column's JSON text, or NULL."""
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
