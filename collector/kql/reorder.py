"""`project-reorder`, as the `project` of every column it implies.

Docs: the named columns (or wildcard patterns) come first, in the order given; a pattern's columns
keep their input order unless `asc`/`desc` (by name) or `granny-asc`/`granny-desc` (by name with
numbers compared as numbers: a20 before a100) is given; a column matched by an earlier pattern
stays where that put it; every other column follows in its input order. The input's columns come
from `columns.describe`; the output names each column with `syntax.name`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from . import syntax
from .errors import SEMANTIC, KqlError, position

_ORDERS = ("asc", "desc", "granny-asc", "granny-desc")


def rewrite(text: str, node: Any, columns_of: Callable[[str], list[tuple[str, str]]]) -> str:
    """*text* with the `project-reorder` operator *node* replaced by a `project`."""
    piped = next(a for a in syntax.ancestors(node) if syntax.kind(a) == "PipedOperator")
    pipe = piped.parentCtx
    statement = syntax.statement_of(node)
    source = text[:statement.start.start] + text[pipe.start.start:piped.start.start].rstrip()
    columns = [name for name, _ in columns_of(source)]
    ordered: list[str] = []
    for item in syntax.children(node):
        order = next((t for t in syntax.tokens(item) if t.lower() in _ORDERS), None)
        pattern_nodes = [c for c in syntax.children(item)] if syntax.kind(item) == "ProjectReorderExpression" else [item]
        raw = "".join(syntax.span(text, c) for c in pattern_nodes).strip()
        matched = [c for c in _matching(raw, columns) if c not in ordered]
        if not matched and "*" not in raw:
            line, pos = position(text, item.start.start)
            raise KqlError(SEMANTIC, f"unknown column '{syntax.name_text(pattern_nodes[0])}'", line, pos)
        ordered.extend(_sorted(matched, order))
    ordered.extend(c for c in columns if c not in ordered)
    start, end = syntax.bounds(node)
    return text[:start] + "project " + ", ".join(syntax.name(c) for c in ordered) + text[end:]


def _matching(raw: str, columns: list[str]) -> list[str]:
    if raw.startswith("["):
        wanted = _bracketed(raw)
        return [c for c in columns if c == wanted]
    if "*" not in raw:
        return [c for c in columns if c == raw]
    regex = re.compile(".*".join(re.escape(p) for p in raw.split("*")), re.DOTALL)
    return [c for c in columns if regex.fullmatch(c)]


def _bracketed(raw: str) -> str:
    inner = raw[1:-1].strip()
    return syntax._unquote(inner) if inner[:1] in ("'", '"') else inner


def _sorted(columns: list[str], order: str | None) -> list[str]:
    if order is None:
        return columns
    order = order.lower()
    key = _granny if order.startswith("granny") else (lambda c: c)
    return sorted(columns, key=key, reverse=order.endswith("desc"))


def _granny(name: str) -> list:
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", name) if part]
