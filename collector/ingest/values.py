"""Parsing the values of an envelope: timestamps, durations, severities, properties, JSON types.

Shared by the item-by-item mapper (envelope.py), the column-wise fast path (columnar.py), the
quirks corrections (quirks.py) and import (rows.py); what cannot be parsed raises an ItemError
naming the field.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime

import orjson

from collector.ingest.stored_form import INT_MAX, INT_MIN, MAX_NESTING, TIME_MAX_US, TIME_MIN_US, TIME_RANGE


class ItemError(ValueError):
    """One envelope is invalid; `field` is the JSON path of the culprit."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


EPOCH = datetime(1970, 1, 1)
EPOCH_UTC = EPOCH.replace(tzinfo=UTC)


def parse_time(value: object, field: str) -> int:
    """Microseconds since the epoch, UTC; a timestamp without offset is taken as UTC. Only years 1
    to 9999 in UTC (stored_form.TIME_RANGE): an offset can push a valid local time out of them."""
    if not isinstance(value, str) or not value:
        raise ItemError(field, "missing: expected an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ItemError(field, f"not an ISO 8601 timestamp from {TIME_RANGE}: {value[:64]!r}") from None
    micros = (moment - (EPOCH if moment.tzinfo is None else EPOCH_UTC)) // _MICROSECOND
    if not TIME_MIN_US <= micros <= TIME_MAX_US:
        raise ItemError(field, f"{value[:64]!r} is outside the accepted range, {TIME_RANGE}")
    return micros


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1) - EPOCH


_DURATION = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")


def parse_duration(value: object, field: str) -> float:
    """Milliseconds from 'd.hh:mm:ss.fffffff' (or a bare number of ms, which some SDKs send)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return finite(value, field)
    if not isinstance(value, str):
        raise ItemError(field, f"expected a duration like '0.00:00:01.500', got {json_type(value)}")
    match = _DURATION.match(value)
    if not match:
        raise ItemError(field, f"not a duration of the form d.hh:mm:ss.fffffff: {value[:64]!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    if days and len(days) > 9:  # beyond a million years; int() would also refuse 4,300 digits
        raise ItemError(field, f"a duration of {days[:16]}... days is out of range: at most 999999999 days")
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
        if text.isdecimal() and len(text) <= 2 and int(text) <= 4:
            return int(text)
        if text.lower() in _SEVERITY_NAMES:
            return _SEVERITY_NAMES[text.lower()]
    raise ItemError(field, f"expected 0-4 or Verbose/Information/Warning/Error/Critical, got {str(value)[:32]!r}")


_KEPT_AS_IS = frozenset((str, dict, list, type(None)))


def custom_dimensions(base: dict) -> dict:
    """baseData.properties as customDimensions: scalars as strings (as App Insights stores them),
    objects and arrays kept as JSON so that `customDimensions.Contents.input` can reach inside
    (dumps_dynamic bounds how deep)."""
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
            out[key] = finite(value, f"data.baseData.measurements.{key}")
        except ValueError as error:
            if isinstance(error, ItemError):
                raise
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
    """The value as a finite float; a boolean is not a number; `default` when absent."""
    if value is None:
        if required:
            raise ItemError(field, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemError(field, f"expected a number, got {json_type(value)}")
    return finite(value, field)


def finite(value: int | float | str, field: str) -> float:
    """The number as a float, which a REAL column and JSON can hold: not NaN, not infinite (a
    body that Python's json module wrote may carry NaN and Infinity), not an integer beyond a
    double's range. ValueError if a string is not a number at all."""
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number):
        raise ItemError(field, f"expected a finite number, got {str(value)[:32]}")
    return number


def as_int(value: int, field: str, column: str) -> int:
    """An integer for a 32-bit `int` column, or the item's error saying the range."""
    if not INT_MIN <= value <= INT_MAX:
        raise ItemError(field, f"{value} does not fit {column}, a 32-bit integer: expected {INT_MIN} to {INT_MAX}")
    return value


def metric_statistics(metric: dict, field: str, value: float) -> tuple[int, float, float, float]:
    """valueCount, valueMin, valueMax and valueStdDev of one metric data point whose `value` is
    already read: count 1, min and max the value and stdDev 0 when absent. Shared by both mappers;
    the field names are made only for an error."""
    count, low, high, deviation = metric.get("count"), metric.get("min"), metric.get("max"), metric.get("stdDev")
    if low is None and high is None and deviation is None and (count is None or count.__class__ is int and 0 <= count <= INT_MAX):
        return count or 1, value, value, 0.0  # the usual: a count alone, or nothing
    return (
        as_int(int(as_number(count, field + ".count") or 1), field + ".count", "valueCount"),
        value if low is None else as_number(low, field + ".min"),
        value if high is None else as_number(high, field + ".max"),
        0.0 if deviation is None else as_number(deviation, field + ".stdDev"),
    )


NESTED_TOO_DEEP = f"nested deeper than {MAX_NESTING} levels of objects and arrays"


def too_deep(value: object, levels: int) -> bool:
    """Whether the value nests objects and arrays more than `levels` deep (a scalar: 0 levels)."""
    if isinstance(value, dict):
        children = value.values()
    elif isinstance(value, (list, tuple)):
        children = value
    else:
        return False
    if levels <= 0:
        return True
    return any(too_deep(child, levels - 1) for child in children if isinstance(child, (dict, list, tuple)))


def json_type(value: object) -> str:
    """The JSON type of a value, as error messages name it."""
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def dumps_dynamic(value: object, field: str = "dynamic value") -> str | None:
    """A dynamic column's JSON text, or NULL; an ItemError naming `field` (and the key of an
    object's culprit) if the value nests objects and arrays deeper than stored_form.MAX_NESTING,
    or cannot be JSON at all (an integer beyond 64 bits, a lone surrogate). Both mappers and
    import store dynamic values through here, so no value of one item can fail a batch."""
    if value is None:
        return None
    try:
        text = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as error:
        if too_deep(value, MAX_NESTING):  # the encoder gives up at 255 levels
            raise ItemError(_culprit(value, field), NESTED_TOO_DEEP) from None
        raise ItemError(field, f"cannot be stored as JSON: {error}") from None
    # Each level takes an opening and a closing bracket: most values are told apart by their
    # length, most others by a count in C, without walking them.
    if len(text) >= _SHORTEST_TOO_DEEP and text.count(b"{") + text.count(b"[") > MAX_NESTING and too_deep(value, MAX_NESTING):
        raise ItemError(_culprit(value, field), NESTED_TOO_DEEP)
    return text.decode()


_SHORTEST_TOO_DEEP = 2 * (MAX_NESTING + 1)


def _culprit(value: object, field: str) -> str:
    """`field`, or `field.key` for the first key of an object whose value is nested too deep."""
    if isinstance(value, dict):
        for key, child in value.items():
            if too_deep(child, MAX_NESTING - 1):
                return f"{field}.{str(key)[:64]}"
    return field
