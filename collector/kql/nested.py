"""`top-nested`: the top values of one column, then within each of them the top values of the
next, and so on.

`T | top-nested 3 of name by c = count(), top-nested 2 of resultCode by sum(duration)` keeps
the 3 names with the most rows, and for each the 2 result codes with the highest total
duration. Each level is the translator's `summarize <aggregate> by <keys so far>` (so any
aggregate works, named as written or `aggregated_<key>` as Kusto names it); this module ranks
each level within its parent row (`row_number() OVER (PARTITION BY parents ORDER BY aggregate
DESC)`, ascending with `asc`) and keeps the first N of rows whose parents were kept. `with
others = v` adds, per parent, one row holding v as the key and the aggregate of the rest
(computed over the rows of the values not kept, by the level's own aggregate).
"""

from __future__ import annotations

import re
from typing import Any

from . import stages, syntax
from .errors import SEMANTIC, UNSUPPORTED, KqlError, position
from .stages import Input, Staging, quote


@stages.handles("TopNestedOperator")
def top_nested(staging: Staging, node: Any, text: str, source: Input) -> str:
    """The SQL of one top-nested over *source* (module doc)."""
    levels = [_level(text, part) for part in syntax.children(node, "TopNestedOperatorPart")]
    keys: list[str] = []
    ctes: list[str] = []
    layout: list[str] = []
    for depth, level in enumerate(levels):
        keys.append(level["key"])
        summarized = staging.sql(f"{source.kql}\n| summarize {level['aggregate']} by {', '.join(keys)}")
        names = [quote(c) for c, _ in staging.columns(summarized)]
        parents, key_col, agg_col = names[:depth], names[depth], names[-1]
        ancestors = "".join(f", p.{c}" for c in layout if c not in parents)
        rows = f"_tn{depth}_all l"
        partition = ""
        if parents:
            join = " AND ".join(f"l.{k} IS NOT DISTINCT FROM p.{k}" for k in parents)
            rows += f" JOIN _tn{depth - 1} p ON {join}"
            partition = f"PARTITION BY {', '.join(f'l.{k}' for k in parents)} "
        ranked = (f"SELECT l.*{ancestors}, row_number() OVER ({partition}ORDER BY l.{agg_col} "
                  f"{level['order']} NULLS LAST) AS __kql_rank FROM {rows}")
        limit = f" WHERE __kql_rank <= {level['count']}" if level["count"] is not None else ""
        ctes.append(f"_tn{depth}_all AS ({summarized})")
        ctes.append(f"_tn{depth} AS (SELECT * EXCLUDE (__kql_rank) FROM ({ranked}){limit})")
        layout += [key_col, agg_col]
    return f"WITH {', '.join(ctes)} SELECT {', '.join(layout)} FROM _tn{len(levels) - 1}"


def _level(text: str, part: Any) -> dict:
    named = syntax.children(part, "NamedExpression")
    ordered = syntax.children(part, "OrderedExpression")
    if syntax.first(part, "TopNestedOperatorWithOthersClause") is not None:
        line, pos = position(text, part.start.start)
        raise KqlError(UNSUPPORTED, "unsupported top-nested option 'with others'", line, pos)
    if not ordered or not named:
        line, pos = position(text, part.start.start)
        raise KqlError(SEMANTIC, "top-nested needs 'of <column> by <aggregate>'", line, pos)
    count = syntax.span(text, named[0]).strip() if len(named) > 1 else None
    key_node = named[-1]
    if count is not None and not re.fullmatch(r"\d+", count):
        line, pos = position(text, named[0].start.start)
        raise KqlError(SEMANTIC, "top-nested: the number of values must be a whole number", line, pos)
    key = syntax.span(text, key_node)
    aggregate_node = syntax.children(ordered[0], "NamedExpression")[0]
    aggregate = syntax.span(text, aggregate_node)
    if syntax.first(aggregate_node, "NamedExpressionNameClause") is None:
        key_name = _key_name(text, key_node)
        aggregate = f"aggregated_{key_name} = {aggregate}"
    direction = syntax.span(text, ordered[0])[len(syntax.span(text, aggregate_node)):].strip().lower()
    order = "ASC" if direction.startswith("asc") else "DESC"
    return {"count": count, "key": key, "aggregate": aggregate, "order": order}


def _key_name(text: str, node: Any) -> str:
    clause = syntax.first(node, "NamedExpressionNameClause")
    if clause is not None:
        return syntax.span(text, clause).rstrip("= \t\r\n").strip()
    written = syntax.span(text, node).strip()
    return written if re.fullmatch(r"[A-Za-z_]\w*", written) else "Column1"
