"""Outer joins: a string column of the side that found no match is `""`, not null.

Kusto strings are never null (an absent string is the empty string), so an unmatched row of
`join kind=leftouter` (or `rightouter`, `fullouter`) shows `""` in the other side's string
columns; SQL's outer join leaves nulls there. The join is translated as usual (a stage,
stages.py) and every string column of its result is given `coalesce(col, '')`; numbers, bools,
datetimes and dynamic values of the unmatched side stay null, as in Kusto.
"""

from __future__ import annotations

import re
from typing import Any

from . import stages, syntax
from .stages import Input, Staging, quote

_OUTER = re.compile(r"\bkind\s*=\s*(leftouter|rightouter|fullouter|outer)\b", re.IGNORECASE)


def _outer(node: Any, text: str) -> bool:
    head = syntax.span(text, node)
    right = syntax.first(node, "JoinOperatorOnClause") or syntax.first(node, "JoinOperatorWhereClause")
    before_on = head[:right.start.start - node.start.start] if right is not None else head
    return _OUTER.search(before_on.split("(", 1)[0]) is not None


@stages.handles("JoinOperator", _outer)
def outer_join(staging: Staging, node: Any, text: str, source: Input) -> str:
    joined = staging.sql(f"{source.kql}\n| {syntax.span(text, node)}")
    columns = staging.columns(joined)
    select = ", ".join(f"coalesce({quote(c)}, '') AS {quote(c)}" if kind == "string" else quote(c)
                       for c, kind in columns)
    return f"SELECT {select} FROM ({joined})"
