"""A new dynamic rule's history: its measure in each past window of up to dynamic.LEARN_DAYS (one
window every STEP_S at least), from the telemetry already stored, in one query.

The windows end at `start + k * step` (k = 0, 1, ...) before the rule's first window, and each
covers [end - window, end], as an evaluation's would. Asking the store once per window is 672
queries for a week of 15-minute windows; instead the rule's query is binned once: each row of
its table gets the end of the window it falls in,

    <table> | extend alert_window_end = <the next window end at or after timestamp>
            | where timestamp >= alert_window_end - <window>
            | <the rest of the rule's query> | summarize alert_value = <measure> by alert_window_end, <split_by>

over the whole span, and the rows of each window end are measured as an evaluation measures its
window's answer (evaluate.measure: the same dimensions, the same cap). A window with no rows gets
what the rule measures over no rows (0 rows; nothing when that is no number, as for an average,
which per-window queries skip too): one more query, with `where 1 == 0`.
A rule's own `summarize` (one at most) gets `alert_window_end` added to its `by`.

This gives the per-window values only when filtering a week then grouping by window equals
filtering each window: the rule's query must be its table followed by row-local operators
(ROW_LOCAL) around at most one `summarize`, must not assign `timestamp`, and the window must not be
longer than the step (longer windows overlap: a row belongs to several). Otherwise, or if the
binned query fails or is cut short, the windows are asked one by one as before. The stages are read
from the query's parse tree (collector/kql/syntax.py) and the query is edited at the tree's
offsets, so comments, strings of every form and brackets are the parser's business. One difference
remains, on purpose: a row stamped exactly on a window boundary, which a per-window query counts
in both windows when the window equals the step (the timespan includes both ends), is counted
once, in the window it ends.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from alerts import dynamic
from alerts.evaluate import MAX_INSTANCES, EvaluationError, measure, run_span, run_window
from alerts.specs import measured_query
from collector.kql import KqlError, QueryResult, syntax
from collector.store.alerts import Rule, Value
from collector.store.database import Store

log = logging.getLogger(__name__)

STEP_S = 900
"""The backfill's finest step between window ends (15 minutes)."""
END_COLUMN = "alert_window_end"
ROW_LOCAL = frozenset("where filter extend project project-away project-keep project-rename project-reorder "
                      "parse parse-where mv-expand search".split())
"""Operators whose output row depends on one input row only: the same over a week as per window."""
BINNED_TIMEOUT_FACTOR = 10
"""The one binned query may take this many evaluation timeouts (it replaces hundreds of queries)."""
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def window_ends(rule: Rule, before: datetime) -> list[datetime]:
    """The ends of the windows to backfill, oldest first."""
    step = timedelta(seconds=max(rule.spec["frequency"], STEP_S))
    end, ends = before - timedelta(days=dynamic.LEARN_DAYS), []
    while end < before:
        ends.append(end)
        end += step
    return ends


def backfill(store: Store, rule: Rule, before: datetime, timeout_s: float,
             stopped: Callable[[], bool] = lambda: False) -> list[Value]:
    """The rule's values in each window of window_ends (binned if it can be, else window by window)."""
    ends = window_ends(rule, before)
    if not ends:
        return []
    binned = binned_values(store, rule, ends, timeout_s)
    return binned if binned is not None else per_window_values(store, rule, ends, timeout_s, stopped)


def per_window_values(store: Store, rule: Rule, ends: list[datetime], timeout_s: float,
                      stopped: Callable[[], bool] = lambda: False) -> list[Value]:
    """One query per window (any rule); stops at the first failure, keeping what it has."""
    values = []
    for end in ends:
        if stopped():
            break
        try:
            result = run_window(store, rule, end, timeout_s)
        except Exception as error:  # noqa: BLE001 - a backfill is best effort: the rule still runs
            log.warning("backfill of %s/%s stopped: %s", rule.service, rule.name, error)
            break
        values += [Value(m.dims_key, end, m.value) for m in _measured(result, rule.spec)]
    return values


def _measured(result: QueryResult, spec: dict) -> list:
    """The window's measures; none when its measure is no number (an average of no rows is NaN):
    such a window has no value to learn from."""
    try:
        return measure(result, spec)
    except EvaluationError:
        return []


def binned_values(store: Store, rule: Rule, ends: list[datetime], timeout_s: float) -> list[Value] | None:
    """The values from one binned query; None when the rule cannot be binned exactly (see above)."""
    step = ends[1] - ends[0] if len(ends) > 1 else timedelta(seconds=max(rule.spec["frequency"], STEP_S))
    window = timedelta(seconds=rule.spec["window"])
    plan = _plan(rule.spec["query"])
    if plan is None or window > step:
        return None
    offset = (ends[0] - datetime(1970, 1, 1)) % step
    binned_spec = {**rule.spec, "query": _binned_query(plan, step, offset, window),
                   "split_by": [END_COLUMN, *rule.spec["split_by"]]}
    empty_spec = {**rule.spec, "query": _empty_query(plan)}
    try:
        result = run_span(store, rule.service, measured_query(binned_spec), ends[0] - window, ends[-1],
                          timeout_s * BINNED_TIMEOUT_FACTOR, len(ends) * MAX_INSTANCES * 10)
        empty = _measured(run_span(store, rule.service, measured_query(empty_spec), ends[0], ends[0], timeout_s, 10),
                          rule.spec)
    except EvaluationError as error:
        log.info("backfill of %s/%s: binned query refused (%s); asking window by window", rule.service, rule.name, error)
        return None
    if result.truncated:
        return None
    by_end = _rows_by_end(result)
    values = []
    for end in ends:
        rows = by_end.get(end)
        found = _measured(QueryResult(result.columns, rows), rule.spec) if rows else empty
        values += [Value(m.dims_key, end, m.value) for m in found]
    return values


def _rows_by_end(result: QueryResult) -> dict[datetime, list[list]]:
    names = [name for name, _ in result.columns]
    index = names.index(END_COLUMN)
    by_end: dict[datetime, list[list]] = {}
    for row in result.rows:
        by_end.setdefault(_instant(row[index]), []).append(row)
    return by_end


def _instant(value: object) -> datetime:
    """A datetime cell as naive UTC (results carry ISO text with a Z)."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.fromisoformat(str(value).replace("Z", "+00:00")).replace(tzinfo=None)


def _binned_query(plan: _Plan, step: timedelta, offset: timedelta, window: timedelta) -> str:
    step_s, offset_s, window_s = (int(t.total_seconds()) for t in (step, offset, window))
    start = f"bin(timestamp - {offset_s}s, {step_s}s) + {offset_s}s"
    head = (f" | extend {END_COLUMN} = iff({start} == timestamp, timestamp, {start} + {step_s}s)"
            f" | where timestamp >= {END_COLUMN} - {window_s}s")
    return syntax.apply(plan.query, [(plan.table_end, plan.table_end, head), *_summarize_by_end(plan)])


def _empty_query(plan: _Plan) -> str:
    """The rule's query over no rows (what a window without rows measures)."""
    return syntax.apply(plan.query, [(plan.table_end, plan.table_end, " | where 1 == 0")])


def _summarize_by_end(plan: _Plan) -> list[tuple[int, int, str]]:
    """The edit grouping a rule's own summarize by the window end too (first in its `by`)."""
    if plan.summarize is None:
        return []
    by = syntax.children(plan.summarize, "SummarizeOperatorByClause")
    if not by:
        end = plan.summarize.stop.stop + 1
        return [(end, end, f" by {END_COLUMN}")]
    after_by = by[0].start.stop + 1  # the clause's first token is `by`
    return [(after_by, after_by, f" {END_COLUMN},")]


@dataclass(frozen=True)
class _Plan:
    """A binnable query and where it is edited: just after its table name, and its summarize."""

    query: str
    table_end: int
    summarize: Any | None


def _plan(query: str) -> _Plan | None:
    """The query's binning plan when it can be binned exactly (see above), else None.

    Its stages come from the query's parse tree, so comments, strings of every form and brackets
    are the parser's business; the edits go in at the tree's offsets, the rest stays as written."""
    pipe = _sole_pipe_expression(query)
    if pipe is None or END_COLUMN in query:
        return None
    table = syntax.children(pipe, "BeforePipeExpression")[0]
    if not _TABLE.fullmatch(syntax.span(query, table)):
        return None
    stages = [syntax.children(syntax.children(piped, "AfterPipeOperator")[0])[0]
              for piped in syntax.children(pipe, "PipedOperator")]
    operators = [stage.start.text.lower() for stage in stages]
    if operators.count("summarize") > 1 or any(op not in ROW_LOCAL | {"summarize"} for op in operators):
        return None
    if any(name.lower() == "timestamp" for stage in stages for name in _assigned_names(stage)):
        return None
    summarize = next((stage for stage, op in zip(stages, operators, strict=True) if op == "summarize"), None)
    return _Plan(query, syntax.bounds(table)[1], summarize)


def _sole_pipe_expression(query: str) -> Any | None:
    """The query's pipe expression when the query is that alone (no `let`, no `;`), else None."""
    try:
        tree = syntax.parse(query)
    except (KqlError, RecursionError):  # the per-window queries will say what is wrong
        return None
    top = syntax.first(tree, "Query") if tree is not None else None
    statements = syntax.children(top, "Statement") if top is not None else []
    if len(statements) != 1 or ";" in syntax.tokens(top):
        return None
    pipe = syntax.first(statements[0], "PipeExpression")
    return pipe if pipe is not None and syntax.same_span(pipe, statements[0]) else None


def _assigned_names(stage: Any) -> list[str]:
    """The columns a stage assigns: `name =`, `(a, b) =` (extend, project, summarize, mv-expand,
    project-rename) and the columns a `parse` pattern extracts."""
    names = [syntax.name_text(node) for clause in syntax.descendants(stage, "NamedExpressionNameClause")
             for node in syntax.descendants(clause, "IdentifierOrExtendedKeywordOrEscapedName")]
    return names + [syntax.name_text(syntax.children(node)[0])
                    for node in syntax.descendants(stage, "ParseOperatorNameAndOptionalType")]
