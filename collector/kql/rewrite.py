"""Bridges at the KQL level: what duckdb-kql rejects or ignores, rewritten into what it accepts.

Each bridge finds its construct in the official grammar's parse tree (so quoting, comments and
nesting are the parser's business, not a regex's) and replaces that span of the text:

- `percentiles(x, 50, 95)` in `summarize` becomes one `percentile` per value, named as Kusto names
  them (`percentile_x_50`, or the `(p50, p95) = ...` names);
- `render` is read into the visualization metadata the query API returns (the translator accepts
  and ignores it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import duckdb_kql

from .errors import SEMANTIC, KqlError, from_syntax, position


@dataclass
class Rewritten:
    """The text to translate and what was learned on the way."""

    text: str
    visualization: dict | None = None
    changed: bool = False
    edits: list[tuple[int, int, str]] = field(default_factory=list)


def rewrite(text: str) -> Rewritten:
    """Parse *text* (raising our KqlError on a syntax error) and apply every bridge."""
    try:
        tree = duckdb_kql.parse(text).tree
    except duckdb_kql.KqlSyntaxError as exc:
        raise from_syntax(exc, text) from None
    result = Rewritten(text)
    if tree is None:
        return result
    for node in _descendants(tree, "SummarizeOperatorContext"):
        for named in _children(node, "NamedExpressionContext"):
            _expand_percentiles(text, named, result)
    for node in _descendants(tree, "RenderOperatorContext"):
        result.visualization = _visualization(text, node)
    if result.edits:
        result.text = _apply(text, result.edits)
        result.changed = True
    return result


# --- percentiles -------------------------------------------------------------------------------

def _expand_percentiles(text: str, named: Any, result: Rewritten) -> None:
    call = _sole_call(named)
    if call is None:
        return
    name = _span(text, _first(call, "SimpleNameReferenceContext"))
    if name not in ("percentiles", "percentile"):
        return
    args = [_span(text, a) for a in _children(call, "ArgumentExpressionContext")]
    if len(args) < 2:
        return
    value, points = args[0], args[1:]
    names = _declared_names(text, named)
    if name == "percentile" and (names or "." not in points[0]):
        return  # the translator names it right already
    column = value if re.fullmatch(r"[A-Za-z_][A-Za-z_0-9]*", value) else ""
    if names is None:
        names = [f"percentile_{column}_{_suffix(p)}" for p in points]
    if len(names) != len(points):
        line, pos = position(text, named.start.start)
        raise KqlError(SEMANTIC, f"'{name}' returns {len(points)} columns but "
                       f"{len(names)} names were given", line, pos)
    parts = [f"{n} = percentile({value}, {p})" for n, p in zip(names, points)]
    result.edits.append((named.start.start, named.stop.stop + 1, ", ".join(parts)))


def _sole_call(named: Any) -> Any | None:
    """The function call that *is* this named expression (not one nested inside it)."""
    unnamed = _first(named, "UnnamedExpressionContext")
    if unnamed is None:
        return None
    for call in _descendants(unnamed, "NamedFunctionCallExpressionContext"):
        if (call.start.start, call.stop.stop) == (unnamed.start.start, unnamed.stop.stop):
            return call
        return None
    return None


def _declared_names(text: str, named: Any) -> list[str] | None:
    clause = _first(named, "NamedExpressionNameClauseContext")
    if clause is None:
        return None
    listed = _first(clause, "NamedExpressionNameListContext")
    if listed is None:
        return [_span(text, clause).rstrip("= \t\r\n")]
    return [_span(text, c) for c in _children(listed, "IdentifierOrExtendedKeywordOrEscapedNameContext")]


def _suffix(point: str) -> str:
    """Kusto's column-name suffix for a percentile: `95`, `99_9`; `50.0` reads as `50`."""
    point = point.strip()
    if re.fullmatch(r"\d+\.0*", point):
        point = point.split(".")[0]
    return re.sub(r"[^A-Za-z0-9]", "_", point)


# --- render ------------------------------------------------------------------------------------

def _visualization(text: str, node: Any) -> dict:
    """`render timechart with (title="t", kind=stacked)` -> {"visualization": "timechart", ...}."""
    terminals = [node.getChild(i) for i in range(node.getChildCount())]
    kind = terminals[1].getText() if len(terminals) > 1 else "table"
    out: dict = {"visualization": kind}
    for prop in _descendants(node, None):
        if prop.getChildCount() == 3 and prop.getChild(1).getText() == "=" and prop is not node:
            key = prop.getChild(0).getText()
            out[key] = _property_value(_span(text, prop.getChild(2)) if hasattr(prop.getChild(2), "start")
                                       else prop.getChild(2).getText())
    return out


def _property_value(raw: str) -> Any:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    if re.fullmatch(r"-?\d+", raw):
        return int(raw)
    if re.fullmatch(r"-?\d+\.\d*", raw):
        return float(raw)
    if raw in ("true", "false"):
        return raw == "true"
    return raw


# --- parse-tree helpers ------------------------------------------------------------------------

def _descendants(node: Any, cls: str | None):
    stack = [node]
    while stack:
        item = stack.pop()
        if not hasattr(item, "getChildCount") or not hasattr(item, "start"):
            continue
        if cls is None or type(item).__name__ == cls:
            yield item
        stack.extend(item.getChild(i) for i in range(item.getChildCount() - 1, -1, -1))


def _children(node: Any, cls: str):
    return [node.getChild(i) for i in range(node.getChildCount())
            if type(node.getChild(i)).__name__ == cls]


def _first(node: Any, cls: str) -> Any | None:
    return next(iter(_descendants(node, cls)), None)


def _span(text: str, node: Any) -> str:
    return text[node.start.start:node.stop.stop + 1]


def _apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    for start, stop, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[stop:]
    return text
