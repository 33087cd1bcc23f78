"""`mv-apply`: a subquery run on each row's arrays, as a little table of their items.

`T | mv-apply d = details to typeof(dynamic) on (where d.message has "x" | take 1)` answers,
for each row of T, the rows the subquery makes of that row's items, each joined back to the
row's other columns (a row whose subquery returns nothing is dropped). Expanded without a new
name (`mv-apply tags on (...)`), the column is replaced by the subquery's.

Built as: the rows numbered (`__kql_row`); the arrays expanded by the translator's `mv-expand`
(same clause syntax, `with_itemindex` included) down to the row number and the items; the
subquery's operators run over all rows' items at once, each made to keep rows apart:
`summarize`, `distinct` and `project` gain `__kql_row` as a key or column, `count` becomes
`summarize Count = count() by __kql_row`, and `take N`/`top N by e` keep N per row
(`row_number() OVER (PARTITION BY __kql_row ...)`); `where`, `extend`, `parse`, `mv-expand`,
`project-away`/`-rename` work per item already. Any other operator in the subquery is refused.
"""

from __future__ import annotations

import re
from typing import Any

from . import stages, syntax
from .errors import SEMANTIC, UNSUPPORTED, KqlError, position
from .stages import Input, Staging, quote

ROW = "__kql_row"
_PER_ITEM = frozenset({"WhereOperator", "FilterOperator", "ExtendOperator", "ParseOperator",
                       "ParseWhereOperator", "MvExpandOperator", "ProjectAwayOperator",
                       "ProjectRenameOperator"})


@stages.handles("MvapplyOperator")
def mv_apply(staging: Staging, node: Any, text: str, source: Input) -> str:
    """The SQL of one mv-apply over *source* (module doc)."""
    numbered = staging.add(f'SELECT *, row_number() OVER () AS "{ROW}" FROM ({source.sql})',
                           [*source.columns, (ROW, "long")])
    expressions = syntax.children(node, "MvapplyOperatorExpression")
    index = syntax.first(node, "StrictQueryOperatorParameter")
    _refuse_extras(text, node)
    names = [_expanded_name(text, e) for e in expressions]
    index_name = []
    if index is not None:
        index_name = [syntax.span(text, syntax.children(index)[-1]).strip()]
    targets = ", ".join(syntax.span(text, e) for e in expressions)
    prefix = f"{syntax.span(text, index)} " if index is not None else ""
    items = staging.add(staging.sql(
        f"{source.prelude}{numbered}\n| mv-expand {prefix}{targets}\n"
        f"| project {', '.join([ROW, *index_name, *names])}"))
    applied = _subquery(staging, text, syntax.first(node, "ContextualSubExpression"), items, source.prelude)
    replaced = [quote(n) for n, e in zip(names, expressions, strict=True) if _is_bare(e)]
    excluded = ", ".join([quote(ROW), *replaced])
    return (f'SELECT o.* EXCLUDE ({excluded}), s.* EXCLUDE ("{ROW}") FROM "{numbered}" o '
            f'JOIN ({applied}) s ON o."{ROW}" = s."{ROW}" ORDER BY o."{ROW}"')


def _refuse_extras(text: str, node: Any) -> None:
    for child in syntax.children(node):
        kind = syntax.kind(child)
        if kind == "StrictQueryOperatorParameter" and syntax.span(text, child).startswith("with_itemindex"):
            continue
        if kind not in ("MvapplyOperatorExpression", "ContextualSubExpression"):
            line, pos = position(text, child.start.start)
            raise KqlError(UNSUPPORTED, f"unsupported mv-apply option '{syntax.span(text, child)}'", line, pos)


def _is_bare(expression: Any) -> bool:
    named = syntax.children(expression, "NamedExpression")[0]
    return syntax.first(named, "NamedExpressionNameClause") is None


def _expanded_name(text: str, expression: Any) -> str:
    named = syntax.children(expression, "NamedExpression")[0]
    clause = syntax.first(named, "NamedExpressionNameClause")
    if clause is not None:
        return syntax.span(text, clause).rstrip("= \t\r\n").strip()
    written = syntax.span(text, named).strip()
    if not re.fullmatch(r"[A-Za-z_]\w*", written):
        line, pos = position(text, named.start.start)
        raise KqlError(SEMANTIC, "mv-apply: name the expanded expression (name = expression)", line, pos)
    return written


def _operators(sub: Any) -> list[Any]:
    pipe = syntax.first(sub, "PipeSubExpression")
    if pipe is None:
        return []
    out = []
    for child in syntax.children(pipe):
        after = child if syntax.kind(child) == "AfterPipeOperator" else syntax.first(child, "AfterPipeOperator")
        out.append(syntax.children(after)[0])
    return out


def _subquery(staging: Staging, text: str, sub: Any, items: str, prelude: str) -> str:
    """The subquery's SQL over the items of every row, kept apart by row (module doc)."""
    current = items
    pending: list[str] = []
    for op in _operators(sub):
        kind = syntax.kind(op)
        span = syntax.span(text, op)
        if kind in _PER_ITEM:
            pending.append(span)
        elif kind in ("SummarizeOperator", "DistinctOperator", "ProjectOperator", "CountOperator"):
            pending.append(_keyed(text, op))
        elif kind in ("TakeOperator", "TopOperator"):
            current = staging.add(_per_row_limit(staging, text, op, prelude, current, pending))
            pending = []
        else:
            line, pos = position(text, op.start.start)
            raise KqlError(UNSUPPORTED, f"unsupported operator inside mv-apply: '{span.split()[0]}'", line, pos)
    body = "".join(f"\n| {p}" for p in pending)
    return staging.sql(f"{prelude}{current}{body}")


def _keyed(text: str, op: Any) -> str:
    kind, span = syntax.kind(op), syntax.span(text, op)
    if kind == "CountOperator":
        return f"summarize Count = count() by {ROW}"
    if kind == "SummarizeOperator":
        by = next((c for c in syntax.children(op) if "ByClause" in syntax.kind(c)), None)
        if by is None:
            return f"{span} by {ROW}"
        at = by.start.start - op.start.start + 2
        return f"{span[:at]} {ROW},{span[at:]}"
    word = span.split()[0]
    return f"{word} {ROW}, {span[len(word):].lstrip()}"


def _per_row_limit(staging: Staging, text: str, op: Any, prelude: str, current: str, pending: list[str]) -> str:
    """`take N` / `top N by e [asc|desc]`, N per row."""
    numbers = re.match(r"\s*(?:take|limit|top)\s+(\d+)", syntax.span(text, op))
    if numbers is None:
        line, pos = position(text, op.start.start)
        raise KqlError(UNSUPPORTED, "inside mv-apply, take/top need a literal count", line, pos)
    count = numbers.group(1)
    order = ""
    if syntax.kind(op) == "TopOperator":
        key = syntax.first(op, "OrderedExpression") or syntax.first(op, "SortOrderedExpression")
        written = syntax.span(text, key) if key is not None else syntax.span(text, op).split(" by ", 1)[1]
        expr, direction = _split_direction(written)
        pending = [*pending, f"extend __kql_key = {expr}"]
        order = f'ORDER BY "__kql_key" {direction} NULLS LAST'
    body = "".join(f"\n| {p}" for p in pending)
    sql = staging.sql(f"{prelude}{current}{body}")
    drop = ', "__kql_key"' if order else ""
    return (f'SELECT * EXCLUDE ("__kql_rank"{drop}) FROM (SELECT *, row_number() OVER '
            f'(PARTITION BY "{ROW}" {order}) AS "__kql_rank" FROM ({sql})) WHERE "__kql_rank" <= {count}')


def _split_direction(written: str) -> tuple[str, str]:
    match = re.search(r"\s+(asc|desc)(\s+nulls\s+(first|last))?\s*$", written)
    if match is None:
        return written, "DESC"
    return written[:match.start()], match.group(1).upper()
