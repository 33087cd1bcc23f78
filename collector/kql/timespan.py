"""The `timespan` request parameter: an ISO 8601 interval that bounds every table's `timestamp`.

Clients send it in three shapes (azure-monitor-query: `PT3600.0S` from a timedelta, with float
seconds; `start/end`; `start/PT…S`) or null. A bare duration ends at the query's pinned `now`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from .errors import SEMANTIC, KqlError

_DURATION = re.compile(
    r"^(?P<sign>-)?P(?:(?P<years>\d+(?:[.,]\d+)?)Y)?(?:(?P<months>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<weeks>\d+(?:[.,]\d+)?)W)?(?:(?P<days>\d+(?:[.,]\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:[.,]\d+)?)H)?(?:(?P<minutes>\d+(?:[.,]\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:[.,]\d+)?)S)?)?$",
    re.IGNORECASE,
)
# Calendar units are approximated: a timespan bounds a query window, where a day's drift in a
# "P1Y" window does not matter, and exact calendar arithmetic would need a dependency.
_UNIT_SECONDS = {"years": 365 * 86400, "months": 30 * 86400, "weeks": 7 * 86400,
                 "days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}


@dataclass(frozen=True)
class Window:
    """A half-open-free, inclusive [start, end] range of naive UTC datetimes."""

    start: datetime
    end: datetime


def parse_window(text: str | None, now: datetime) -> Window | None:
    """Parse a request `timespan`; None (or empty) means unbounded. *now* is naive UTC."""
    if text is None or not str(text).strip():
        return None
    text = str(text).strip()
    try:
        return _window(text, now)
    except OverflowError:
        raise KqlError(SEMANTIC, f"invalid timespan {text!r}: it reaches outside the years 1 to 9999") from None


def _window(text: str, now: datetime) -> Window:
    first, sep, second = text.partition("/")
    if not sep:
        return Window(now - _duration(text), now)
    if _looks_like_duration(first):
        end = _instant(second)
        return _ordered(end - _duration(first), end, text)
    start = _instant(first)
    if _looks_like_duration(second):
        return _ordered(start, start + _duration(second), text)
    return _ordered(start, _instant(second), text)


def _looks_like_duration(part: str) -> bool:
    return part.strip().upper().lstrip("-").startswith("P")


def _duration(text: str) -> timedelta:
    match = _DURATION.match(text.strip())
    if match is None or not any(match.group(u) for u in _UNIT_SECONDS):
        raise _bad(text)
    seconds = sum(float(match.group(u).replace(",", ".")) * s
                  for u, s in _UNIT_SECONDS.items() if match.group(u))
    try:
        delta = timedelta(seconds=seconds)
    except OverflowError:
        raise _bad(text) from None
    return -delta if match.group("sign") else delta


def _instant(text: str) -> datetime:
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise _bad(text) from None
    if parsed.tzinfo is not None:
        parsed = parsed.astimezone(UTC).replace(tzinfo=None)
    return parsed


def _ordered(start: datetime, end: datetime, text: str) -> Window:
    if end < start:
        raise KqlError(SEMANTIC, f"timespan {text!r} ends before it starts")
    return Window(start, end)


def _bad(text: str) -> KqlError:
    return KqlError(
        SEMANTIC,
        f"invalid timespan {text!r}: expected an ISO 8601 duration (PT1H), start/end or start/duration",
    )
