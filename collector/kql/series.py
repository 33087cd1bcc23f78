"""`make-series`: one row per group, each aggregate an array over fixed bins, absent bins filled.

`T | make-series a=avg(x) default=0 on timestamp from F to E step S by k` answers, per value of
k found in the rows, `a` as an array of ceil((E - F) / S) values (bin i holding the rows with
F + i*S <= timestamp < F + (i+1)*S; a bin with no rows holding the default, 0 when none is
given) and `timestamp` as the array of bin starts. Without `from` the first bin is the one
holding the earliest value (`bin(min, S)`), without `to` the last one holds the latest. Rows
outside [F, E) or with a null axis value are left out; no rows in, no rows out.

The aggregation itself is the translator's `summarize ... by k, bin_at(axis, S, F)` (so every
aggregate it knows, with Kusto's names, works here); this module only builds the bins: the
groups crossed with the bin numbers, the summarized rows joined on, each array assembled in bin
order. Columns come out in Kusto's order: the by keys, the aggregates, the axis (the summarized rows
have the keys, the bin, then the aggregates).
"""

from __future__ import annotations

from typing import Any

from . import stages, syntax
from .budget import MAX_RANGE_ROWS
from .errors import LIMIT_MARKER, SEMANTIC, UNSUPPORTED, KqlError, position
from .stages import Input, Staging, quote

_DATETIME_JSON = "'%Y-%m-%dT%H:%M:%S.%f'"


@stages.handles("MakeSeriesOperator")
def make_series(staging: Staging, node: Any, text: str, source: Input) -> str:
    """The SQL of one make-series over *source* (module doc)."""
    on_clause = syntax.first(node, "MakeSeriesOperatorOnClause")
    range_clause = syntax.first(node, "MakeSeriesOperatorFromToStepClause")
    by_clause = syntax.first(node, "MakeSeriesOperatorByClause")
    aggregates = _aggregations(node, text)
    if on_clause is None or range_clause is None:
        line, pos = position(text, node.start.start)
        raise KqlError(SEMANTIC, "make-series needs 'on <axis>' and 'step <size>'", line, pos)
    on = syntax.span(text, syntax.children(on_clause)[0])
    bounds = _bounds(text, range_clause)
    keys = [syntax.span(text, k) for k in syntax.children(by_clause)] if by_clause is not None else []
    aggs, defaults = [], []
    for start, agg in aggregates:
        named = syntax.children(agg, "NamedExpression")[0]
        aggs.append(text[start:named.stop.stop + 1])
        default = syntax.first(agg, "MakeSeriesOperatorExpressionDefaultClause")
        defaults.append(syntax.span(text, syntax.children(default)[0]) if default is not None else "0")
    summarized = staging.sql(_summarize_kql(source.kql, on, bounds, aggs, keys))
    summary_columns = staging.columns(summarized)
    limits = staging.sql(_bounds_kql(source, on, bounds, defaults))
    axis_name = _axis_name(text, on_clause)
    return _assemble(summarized, summary_columns, limits, len(keys), len(aggs), axis_name)


def _aggregations(node: Any, text: str) -> list[tuple[int, Any]]:
    """(where its text starts, node) of each aggregation. The grammar reads `y = sum(y)` as a
    parameter `y = sum` followed by an aggregation `(y)`: the two are one aggregation again.
    `kind=nonempty` and other real make-series parameters change the answer: refused."""
    known = {"MakeSeriesOperatorAggregation", "MakeSeriesOperatorOnClause",
             "MakeSeriesOperatorFromToStepClause", "MakeSeriesOperatorByClause",
             "MakeSeriesOperatorInRangeClause"}
    out: list[tuple[int, Any]] = []
    children = syntax.children(node)
    for i, child in enumerate(children):
        following = children[i + 1] if i + 1 < len(children) else None
        if (syntax.kind(child) == "RelaxedQueryOperatorParameter" and following is not None
                and syntax.kind(following) == "MakeSeriesOperatorAggregation"
                and syntax.span(text, following).startswith("(")):
            out.append((child.start.start, following))
            continue
        if syntax.kind(child) == "MakeSeriesOperatorAggregation":
            if not (out and out[-1][1] is child):
                out.append((child.start.start, child))
            continue
        if syntax.kind(child) not in known:
            line, pos = position(text, child.start.start)
            raise KqlError(UNSUPPORTED, f"unsupported make-series option '{syntax.span(text, child)}'",
                           line, pos)
        if syntax.kind(child) == "MakeSeriesOperatorInRangeClause":
            line, pos = position(text, child.start.start)
            raise KqlError(UNSUPPORTED, "unsupported make-series form 'in range(...)': "
                           "write 'from ... to ... step ...'", line, pos)
    return out


def _bounds(text: str, clause: Any) -> dict[str, str]:
    """{'from': ..., 'to': ..., 'step': ...} as written (only the ones given)."""
    out: dict[str, str] = {}
    words = [clause.getChild(i).getText().lower() for i in range(clause.getChildCount())]
    for i, word in enumerate(words):
        if word in ("from", "to", "step"):
            out[word] = syntax.span(text, clause.getChild(i + 1))
    return out


def _bin(bounds: dict[str, str], value: str) -> str:
    if "from" in bounds:
        return f"bin_at({value}, ({bounds['step']}), ({bounds['from']}))"
    return f"bin({value}, ({bounds['step']}))"


def _summarize_kql(source: str, on: str, bounds: dict[str, str], aggs: list[str], keys: list[str]) -> str:
    conditions = ["isnotnull(__kql_on)"]
    if "from" in bounds:
        conditions.append(f"__kql_on >= ({bounds['from']})")
    if "to" in bounds:
        conditions.append(f"__kql_on < ({bounds['to']})")
    by = ", ".join([*keys, f"__kql_on = {_bin(bounds, '__kql_on')}"])
    return (f"{source}\n| extend __kql_on = ({on})\n| where {' and '.join(conditions)}\n"
            f"| summarize {', '.join(aggs)} by {by}")


def _bounds_kql(source: Input, on: str, bounds: dict[str, str], defaults: list[str]) -> str:
    """One row: the first bin, the end, the step and each aggregate's default. Given from and
    to, a `print` (after the query's lets) that reads no table; else the axis' min and max."""
    values = [f"__kql_d{i} = ({d})" for i, d in enumerate(defaults)]
    if "from" in bounds and "to" in bounds:
        return (f"{source.prelude}print __kql_f = ({bounds['from']}), __kql_t = ({bounds['to']}), "
                f"__kql_s = ({bounds['step']}), {', '.join(values)}")
    start = f"({bounds['from']})" if "from" in bounds else _bin(bounds, "__kql_lo")
    end = f"({bounds['to']})" if "to" in bounds else f"{_bin(bounds, '__kql_hi')} + ({bounds['step']})"
    return (f"{source.kql}\n| extend __kql_on = ({on})\n"
            f"| summarize __kql_lo = min(__kql_on), __kql_hi = max(__kql_on)\n"
            f"| project __kql_f = {start}, __kql_t = {end}, __kql_s = ({bounds['step']}), {', '.join(values)}")


def _axis_name(text: str, on_clause: Any) -> str:
    named = syntax.children(on_clause)[0]
    clause = syntax.first(named, "NamedExpressionNameClause")
    if clause is not None:
        return syntax.span(text, clause).rstrip("= \t\r\n").strip()
    words = syntax.span(text, named).strip()
    return words if words.isidentifier() else "on"


def _assemble(summarized: str, columns: list[tuple[str, str]], limits: str, n_keys: int,
              n_aggs: int, axis_name: str) -> str:
    keys = [quote(c) for c, _ in columns[:n_keys]]
    aggs = [quote(c) for c, _ in columns[n_keys + 1:n_keys + 1 + n_aggs]]
    temporal = columns[n_keys][1] in ("datetime", "timespan")
    offset = "epoch" if temporal else ""
    count = (f"CAST(ceil(({offset}(b.__kql_t) - {offset}(b.__kql_f)) / {offset}(b.__kql_s)) AS BIGINT)")
    index = (f"CAST(round(({offset}(a.__kql_on) - {offset}(b.__kql_f)) / {offset}(b.__kql_s)) AS BIGINT)")
    too_many = (LIMIT_MARKER + f"make-series would build more than {MAX_RANGE_ROWS:,} bins, "
                "the most a query may generate").replace("'", "''")
    checked = (f"CASE WHEN {offset}(b.__kql_s) <= 0 THEN "
               f"error('{LIMIT_MARKER}make-series: the step must be positive') "
               f"WHEN {count} > {MAX_RANGE_ROWS} THEN error('{too_many}') "
               f"ELSE greatest({count}, 0) END")
    group_keys = ", ".join(f"g.{k}" for k in keys)
    groups = (f"SELECT DISTINCT {', '.join(keys)} FROM _ms_a" if keys
              else "SELECT DISTINCT 1 AS __kql_one FROM _ms_a")
    join = " AND ".join([*(f"s.{k} IS NOT DISTINCT FROM g.{k}" for k in keys), "s.__kql_i = n.i"])
    arrays = []
    for i, agg in enumerate(aggs):
        arrays.append(f"to_json(list(CASE WHEN s.__kql_i IS NULL THEN b.__kql_d{i} ELSE s.{agg} END "
                      f"ORDER BY n.i)) AS {agg}")
    start = "b.__kql_f + n.i * b.__kql_s"
    axis = f"strftime({start}, {_DATETIME_JSON}) || '0Z'" if temporal else start
    arrays.append(f"to_json(list({axis} ORDER BY n.i)) AS {quote(axis_name)}")
    select = ", ".join([*(f"g.{k}" for k in keys), *arrays])
    group_by = f" GROUP BY {group_keys}" if keys else " GROUP BY g.__kql_one"
    return (f"WITH _ms_a AS ({summarized}), _ms_b AS ({limits}), "
            f"_ms_s AS (SELECT a.*, {index} AS __kql_i FROM _ms_a a CROSS JOIN _ms_b b), "
            f"_ms_n AS (SELECT unnest(range(0, {checked})) AS i FROM _ms_b b), _ms_g AS ({groups}) "
            f"SELECT {select} FROM _ms_g g CROSS JOIN _ms_n n CROSS JOIN _ms_b b "
            f"LEFT JOIN _ms_s s ON {join}{group_by}")
