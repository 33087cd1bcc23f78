"""Timespan values on ClickHouse: every timespan is an `IntervalMicrosecond`.

DuckDB's INTERVAL is one value whatever its unit (`INTERVAL '1h' + INTERVAL '30m'` is 01:30:00);
sqlglot writes ClickHouse intervals of the literal's own unit, and ClickHouse adds an hour and a
minute interval into a *tuple* (1, 30), refuses `2 * INTERVAL 1 HOUR`, and has no `to_microseconds`
nor a cast from text. Here every timespan the translator builds is one unit, microseconds, which
ClickHouse adds, negates, compares and adds to a DateTime64(6) exactly:

- `INTERVAL '1h'`, `INTERVAL 1 HOUR`, `INTERVAL '00:30'` (hh:mm[:ss]): `toIntervalMicrosecond(N)`;
  a month or a year, which has no fixed length, stays as sqlglot writes it (an instant still moves
  by it; such a timespan as an answer is no fixed count of microseconds either).
- `to_microseconds(n)`: `toIntervalMicrosecond(n)`; `to_seconds(x)` (x seconds, a real):
  `toIntervalMicrosecond(toInt64(round(x * 1e6)))` (DuckDB rounds the microseconds too).
- `n * timespan` with a whole n: `toIntervalMicrosecond(n * N)`; a real factor is refused.
- `epoch(timespan)`, its length in seconds as a real: `toInt64(timespan) / 1e6`.
- `CAST(timespan AS INTERVAL)` (datatable's cells: `CAST(INTERVAL '1h' AS INTERVAL)`) is the
  timespan itself.
- `CAST(text AS INTERVAL)` (totimespan's `hh:mm[:ss[.fffffff]]` after its day part): parsed field
  by field; a form DuckDB reads in another way (a sign, minutes or seconds past 59, more than six
  fraction digits) is refused when the query runs.

A timespan answer leaves ClickHouse as the interval's count of its unit (a bare integer); execute.py
reads it back through `interval_cells` by the column's ClickHouse type.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlglot import exp, parse_one

from .refusals import refuse
from .udfs import UNSUPPORTED_MARK

_MICRO = "toIntervalMicrosecond"
_CLOCK = re.compile(r"^(\d+):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6}))?)?$")
_UNIT_US = {"MICROSECOND": 1, "MILLISECOND": 1_000, "SECOND": 1_000_000, "MINUTE": 60_000_000,
            "HOUR": 3_600_000_000, "DAY": 86_400_000_000, "WEEK": 7 * 86_400_000_000}
_TEXT = "__kql_ts"
# The h:mm[:ss[.ffffff]] fields of a text (zero where absent): hours, minutes, seconds, microseconds.
_FIELDS = (f"toInt64OrZero(splitByChar(':', {_TEXT})[1])", f"toInt64OrZero(splitByChar(':', {_TEXT})[2])",
           f"toInt64OrZero(splitByChar('.', splitByChar(':', {_TEXT})[3])[1])",
           f"toInt64OrZero(rightPad(splitByChar('.', splitByChar(':', {_TEXT})[3])[2], 6, '0'))")
_READABLE = (f"(match({_TEXT}, '^[0-9]+:[0-9]{{1,2}}(:[0-9]{{1,2}}(\\\\.[0-9]{{1,6}})?)?$') "
             f"AND {_FIELDS[1]} < 60 AND {_FIELDS[2]} < 60)")
_MICROSECONDS = f"{_FIELDS[0]} * 3600000000 + {_FIELDS[1]} * 60000000 + {_FIELDS[2]} * 1000000 + {_FIELDS[3]}"


def timespan_values(tree: exp.Expr) -> exp.Expr:
    """Every timespan the translator builds as an IntervalMicrosecond (see the module doc)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Interval):
            length = interval_length(node)
            return node if length is None else _micro(exp.Literal.number(length))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "to_microseconds" and len(node.expressions) == 1:
            return _micro(node.expressions[0].transform(swap))
        if isinstance(node, exp.Anonymous) and node.name.lower() == "to_seconds" and len(node.expressions) == 1:
            seconds = node.expressions[0].transform(swap).sql("clickhouse")
            return _micro(parse_one(f"toInt64(round(({seconds}) * 1e6))", read="clickhouse"))
        if isinstance(node, (exp.Cast, exp.TryCast)) and node.to.this == exp.DType.INTERVAL:
            value = node.this.transform(swap)
            return value if _is_timespan(value) else _parsed_text(value)
        if isinstance(node, exp.TimeToUnix) and _is_timespan(node.this.transform(swap)):
            count = exp.Anonymous(this="toInt64", expressions=[node.this.transform(swap)])
            return exp.Paren(this=exp.Div(this=count, expression=exp.Literal.number("1e6")))
        if isinstance(node, exp.ToDays):
            days = exp.Anonymous(this="toInt64", expressions=[node.this.transform(swap)])
            return _micro(exp.Mul(this=days, expression=exp.Literal.number(_UNIT_US["DAY"])))
        if isinstance(node, exp.Mul):
            return _scaled(node.this.transform(swap), node.expression.transform(swap)) or node
        return node
    return _raising_branches(tree.transform(swap, copy=False))


def _raising_branches(tree: exp.Expr) -> exp.Expr:
    """A CASE choosing a timespan or raising (`error(...)`, ClickHouse's UInt8 `throwIf` once
    lowered) has no common type in ClickHouse: the raising branch is made an interval too."""
    for case in list(tree.find_all(exp.Case)):
        values = [b.args["true"] for b in case.args.get("ifs") or []] + [case.args.get("default")]
        if any(v is not None and _is_timespan(v) for v in values):
            for value in values:
                if isinstance(value, exp.Anonymous) and value.name.lower() == "error":
                    value.replace(_micro(value.copy()))
    return tree


def interval_length(interval: exp.Interval) -> int | None:
    """An interval literal's length in microseconds (`'5m'`, `5 MINUTE`, `'1d'`, `'00:30'`); None
    for one of no fixed length (a month) or not a constant, which stays as sqlglot writes it."""
    amount = interval.this.name if isinstance(interval.this, exp.Literal) else ""
    unit_node = interval.args.get("unit")
    unit = unit_node.name.upper().removesuffix("S") if unit_node is not None else ""
    if unit:
        try:
            return round(float(amount) * _UNIT_US[unit]) if unit in _UNIT_US else None
        except ValueError:
            return None
    clock = _CLOCK.match(amount.strip())
    if clock is None or int(clock[2]) > 59 or int(clock[3] or 0) > 59:
        return None
    seconds = int(clock[1]) * 3600 + int(clock[2]) * 60 + int(clock[3] or 0)
    return seconds * 1_000_000 + int((clock[4] or "").ljust(6, "0"))


def _micro(count: exp.Expr) -> exp.Expr:
    return exp.Anonymous(this=_MICRO, expressions=[count])


def _is_timespan(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, (exp.Add, exp.Sub)):
        return _is_timespan(node.this) and _is_timespan(node.expression)
    if isinstance(node, exp.Neg):
        return _is_timespan(node.this)
    if isinstance(node, exp.If):  # a parsed text (_parsed_text)
        return _is_timespan(node.args["true"])
    if isinstance(node, exp.Case):
        values = [b.args["true"] for b in node.args.get("ifs") or []] + [node.args.get("default")]
        return any(v is not None and _is_timespan(v) for v in values)
    return isinstance(node, exp.Anonymous) and node.name == _MICRO


def _scaled(left: exp.Expr, right: exp.Expr) -> exp.Expr | None:
    """`n * timespan` (either order) as one interval of n times the microseconds; None when
    neither side is a timespan. A factor that is not a whole number is refused."""
    for factor, span in ((left, right), (right, left)):
        if _is_timespan(span):
            if not _whole(factor):
                refuse("a timespan times a real")
            count = exp.Mul(this=exp.Anonymous(this="toInt64", expressions=[factor]),
                            expression=exp.Anonymous(this="toInt64", expressions=[span]))
            return _micro(count)
    return None


def _whole(node: exp.Expr) -> bool:
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, exp.Neg):
        return _whole(node.this)
    if isinstance(node, exp.Literal):
        return not node.is_string and node.this.lstrip("-").isdigit()
    if isinstance(node, exp.Case):
        values = [b.args["true"] for b in node.args.get("ifs") or []] + [node.args.get("default")]
        return all(v is not None and _whole(v) for v in values)
    return isinstance(node, exp.Cast) and node.to.this in (exp.DType.BIGINT, exp.DType.INT)


def _parsed_text(text: exp.Expr) -> exp.Expr:
    """`CAST(text AS INTERVAL)` for the forms DuckDB reads as h:mm[:ss[.ffffff]] (see module doc):
    NULL text gives NULL, another text refuses the query (a guard on the value, not a branch, as
    ClickHouse evaluates both sides of an `if` inside a lambda)."""
    guard = (f"throwIf(isNotNull({_TEXT}) AND NOT {_READABLE.replace(_TEXT, f'ifNull({_TEXT}, {_ZERO})')}, "
             f"'{UNSUPPORTED_MARK}this timespan text is not supported on the clickhouse store')")
    value = _MICROSECONDS.replace(_TEXT, f"ifNull({_TEXT}, {_ZERO})")
    parsed = parse_one(f"if({guard} = 0 AND isNotNull({_TEXT}), {_MICRO}({value}), NULL)", read="clickhouse")
    for column in list(parsed.find_all(exp.Column)):
        if column.name == _TEXT:
            column.replace(text.copy())
    return parsed


_ZERO = "'0:00'"


_INTERVAL_US = {f"Interval{unit.title()}": us for unit, us in _UNIT_US.items()}


def interval_cells(types: Sequence[Any], rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """*rows* with each interval cell (a bare count of its column's unit, as clickhouse-connect
    reads an IntervalMicrosecond, IntervalHour...) as the timedelta it is."""
    units = [_INTERVAL_US.get(re.sub(r"^Nullable\((.*)\)$", r"\1", getattr(t, "name", str(t)))) for t in types]
    if not any(units):
        return rows
    return [[timedelta(microseconds=v * unit) if unit and isinstance(v, int) else v
             for unit, v in zip(units, row, strict=True)] for row in rows]

