"""Bridges at the KQL level: what duckdb-kql rejects or ignores, rewritten into what it accepts.

Each bridge finds its construct in the official grammar's parse tree (so quoting, comments and
nesting are the parser's business, not a regex's) and replaces that span of the text with KQL the
translator handles; what a bridge writes is the user's own spans, our keywords, and values quoted
by `syntax.string`/`syntax.name`. In order:

- tabular `let` functions and `as` become tabular `let`s (tabular.py);
- `search` and `project-reorder` become `union`/`where` and `project` over the columns their
  input has (search.py, reorder.py; the columns come from `columns_of`, see columns.py);
- `extract(re, g, s, typeof(T))` becomes the conversion of `extract(re, g, s)` to T;
- `parse` whose pattern starts with a column gets a leading literal to anchor it (see
  `_parse_leading_column`);
- `percentiles(x, 50, 95)` in `summarize` becomes one `percentile` per value, named as Kusto names
  them (`percentile_x_50`, or the `(p50, p95) = ...` names);
- `render` is read into the visualization metadata the query API returns (the translator accepts
  and ignores it).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import multi, names, reorder, search, syntax, tabular, window
from .errors import SEMANTIC, KqlError, position

_MAX_SCHEMA_BRIDGES = 32


@dataclass
class Rewritten:
    """The text to translate and what was learned on the way."""

    text: str
    visualization: dict | None = None
    changed: bool = False
    edits: list[tuple[int, int, str]] = field(default_factory=list)


def rewrite(text: str, columns_of: Callable[[str], list[tuple[str, str]]] | None = None) -> Rewritten:
    """Parse *text* (raising our KqlError on a syntax error) and apply every bridge."""
    original = text
    text = window.mark_bare_serialize(text)
    tree = syntax.parse(text)
    if tree is None:
        return Rewritten(text)
    names.check(text, tree)
    text = tabular.label_union_parts(tabular.hoist_invoke(text))
    text = multi.expand(tabular.hoist_as(tabular.inline_functions(text)))
    if columns_of is not None:
        text = _schema_bridges(text, columns_of, original)
    tree = syntax.parse(text) if text != original else tree
    result = Rewritten(text)
    for node in _descendants(tree, "NamedFunctionCallExpressionContext"):
        _typed_extract(text, node, result)
    for node in _descendants(tree, "ParseOperatorContext"):
        _parse_leading_column(text, node, result)
    for node in _descendants(tree, "ParseWhereOperatorContext"):
        _parse_leading_column(text, node, result)
    for node in _descendants(tree, "SummarizeOperatorContext"):
        for named in _children(node, "NamedExpressionContext"):
            _expand_percentiles(text, named, result)
    for node in _descendants(tree, "RenderOperatorContext"):
        result.visualization = _visualization(text, node)
    if result.edits:
        result.text = _apply(text, result.edits)
    result.changed = result.text != original
    return result


def _schema_bridges(text: str, columns_of: Callable[[str], list[tuple[str, str]]], original: str) -> str:
    """`search` and `project-reorder`, first in the text first: a later one may read an earlier."""
    for _ in range(_MAX_SCHEMA_BRIDGES):
        tree = syntax.parse(text)
        node = next((n for n in syntax.descendants(tree)
                     if syntax.kind(n) in ("SearchOperator", "ProjectReorderOperator")), None)
        if node is None:
            return text
        bridge = search if syntax.kind(node) == "SearchOperator" else reorder
        try:
            text = bridge.rewrite(text, node, columns_of)
        except KqlError as exc:
            # Raised about the text whose columns were asked for: point into the user's text.
            named = re.search(r"'([^']+)'", exc.message)
            if named and exc.line is not None:
                exc.line = exc.pos = None
                exc.at(original, named.group(1))
            raise
    raise KqlError(SEMANTIC, "too many search/project-reorder operators in one query")


# --- extract(..., typeof(T)) -------------------------------------------------------------------

# KQL type -> the conversion function that gives it (Kusto's typed extract converts the same way).
_CONVERSIONS = {
    "string": "tostring", "long": "tolong", "int": "toint", "real": "toreal", "double": "toreal",
    "bool": "tobool", "boolean": "tobool", "datetime": "todatetime", "date": "todatetime",
    "timespan": "totimespan", "time": "totimespan", "dynamic": "todynamic", "guid": "toguid",
    "decimal": "todecimal",
}


def _typed_extract(text: str, call: Any, result: Rewritten) -> None:
    """`extract(re, g, s, typeof(long))` -> `tolong(extract(re, g, s))`."""
    if syntax.name_text(syntax.children(call)[0]).lower() != "extract":
        return
    args = syntax.children(call, "ArgumentExpression")
    if len(args) != 4:
        return
    literal = _first(args[3], "TypeofLiteralExpressionContext") or _first(args[3], "TypeLiteralExpressionContext")
    if literal is None:
        line, pos = position(text, args[3].start.start)
        raise KqlError(SEMANTIC, "extract: the fourth argument must be typeof(<type>)", line, pos)
    type_name = re.sub(r"\s+", "", _span(text, literal)).lower()
    type_name = type_name.removeprefix("typeof(").removesuffix(")")
    conversion = _CONVERSIONS.get(type_name)
    if conversion is None:
        line, pos = position(text, args[3].start.start)
        raise KqlError(SEMANTIC, f"extract: cannot convert to '{type_name}'", line, pos)
    inner = _span(text, call)[:args[2].stop.stop + 1 - call.start.start] + ")"
    result.edits.append((call.start.start, call.stop.stop + 1, f"{conversion}({inner})"))


# --- parse with a leading column ---------------------------------------------------------------

# A character that starts the parsed text and the pattern both, so the pattern starts with a literal
# (the translator's only form) and the first column begins where the text does. Documented in the
# report: a value that itself holds U+0001 can parse differently, since only that character
# anchors the first column.
_ANCHOR = "\u0001"


def _parse_leading_column(text: str, node: Any, result: Rewritten) -> None:
    """`parse s with v:long " " *` -> `parse strcat("\x01", s) with "\x01" v:long " " *`.

    The docs allow a pattern to start with a column; the translator does not. In simple and
    relaxed mode the anchor character is prepended to the text and to the pattern. In regex mode
    the literal is a regex, so an empty group `(?:)` is the leading literal and nothing changes.
    """
    pattern = _first(node, "ParseOperatorPatternContext")
    if pattern is None:
        return
    parts = [pattern.getChild(i) for i in range(pattern.getChildCount())]
    if not parts or type(parts[0]).__name__ != "ParseOperatorNameAndOptionalTypeContext":
        return
    regex = any(type(c).__name__ == "ParseOperatorKindClauseContext"
                and "regex" in c.getText().lower() for c in syntax.children(node))
    if regex:
        result.edits.append((parts[0].start.start, parts[0].start.start, '"(?:)" '))
        return
    source = next(c for c in syntax.children(node)
                  if type(c).__name__ not in ("ParseOperatorKindClauseContext",
                                              "ParseOperatorPatternContext"))
    start, end = syntax.bounds(source)
    result.edits.append((start, end, f'strcat("{_ANCHOR}", {_span(text, source)})'))
    result.edits.append((parts[0].start.start, parts[0].start.start, f'"{_ANCHOR}" '))


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
    parts = [f"{n} = percentile({value}, {p})" for n, p in zip(names, points, strict=True)]
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
