"""Reading the official grammar's parse tree and writing KQL text back: what every bridge shares.

Bridges rewrite the user's query as text, span by span, so all they ever write is either a span of
the user's own text, a keyword of ours, or a value quoted here (`string`, `name`): user text never
becomes KQL syntax by accident, and the translator then turns every literal and name into an
escaped SQL literal or quoted identifier as it does for any query.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import duckdb_kql

from .errors import SYNTAX, KqlError, from_syntax


@lru_cache(maxsize=64)
def parse(text: str) -> Any:
    """The parse tree of *text*, or our KqlError naming the first syntax problem.

    Cached per text: the bridges each look at the same text's tree (trees are only read)."""
    try:
        return duckdb_kql.parse(text).tree
    except duckdb_kql.KqlSyntaxError as exc:
        raise from_syntax(exc, text) from None


def kind(node: Any) -> str:
    """`SearchOperator` for a `SearchOperatorContext`."""
    return type(node).__name__.removesuffix("Context")


def descendants(node: Any, cls: str | None = None):
    """Rule nodes under (and including) *node*, depth first in text order; `cls` filters by kind."""
    stack = [node]
    while stack:
        item = stack.pop()
        if not hasattr(item, "getChildCount") or not hasattr(item, "start"):
            continue
        if cls is None or kind(item) == cls:
            yield item
        stack.extend(item.getChild(i) for i in range(item.getChildCount() - 1, -1, -1))


def children(node: Any, cls: str | None = None) -> list[Any]:
    """Direct rule children (tokens excluded), optionally of one kind."""
    out = []
    for i in range(node.getChildCount()):
        child = node.getChild(i)
        if hasattr(child, "start") and (cls is None or kind(child) == cls):
            out.append(child)
    return out


def tokens(node: Any) -> list[str]:
    """The texts of *node*'s direct token children (`search`, `in`, `(`, `,`...)."""
    return [node.getChild(i).getText() for i in range(node.getChildCount())
            if not hasattr(node.getChild(i), "start")]


def first(node: Any, cls: str) -> Any | None:
    return next(iter(descendants(node, cls)), None)


def span(text: str, node: Any) -> str:
    return text[node.start.start:node.stop.stop + 1]


def bounds(node: Any) -> tuple[int, int]:
    """[start, end) character offsets of *node*."""
    return node.start.start, node.stop.stop + 1


def same_span(a: Any, b: Any) -> bool:
    return bounds(a) == bounds(b)


def ancestors(node: Any):
    node = node.parentCtx
    while node is not None:
        yield node
        node = node.parentCtx


def statement_of(node: Any) -> Any:
    """The top-level statement (a child of the `Query` rule, or its wrapper) holding *node*."""
    best = node
    for up in ancestors(node):
        if kind(up) == "Query":
            return best
        best = up
    return best


def name_text(node: Any) -> str:
    """The name an identifier node spells: `x`, or the value of `['x y']`/`["x"]`."""
    raw = node.getText().strip()
    if raw.startswith("[") and raw.endswith("]"):
        inner = raw[1:-1].strip()
        if inner[:1] in ("'", '"'):
            return _unquote(inner)
    return raw


def string_value(node: Any) -> str:
    """The value of a string literal node (adjacent literals are concatenated, as in Kusto)."""
    out = []
    for i in range(node.getChildCount()):
        out.append(_unquote(node.getChild(i).getText()))
    return "".join(out)


def _unquote(raw: str) -> str:
    verbatim = raw[:1] in ("@",)
    if raw[:1] in ("h", "H") and raw[1:2] in ("'", '"', "@"):
        raw = raw[1:]
        verbatim = raw[:1] == "@"
    if verbatim:
        body, quote = raw[2:-1], raw[1]
        return body.replace(quote * 2, quote)
    body = raw[1:-1]
    out, i = [], 0
    simple = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", "'": "'", '"': '"', "0": "\0"}
    while i < len(body):
        ch = body[i]
        if ch == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append(simple.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def string(value: str) -> str:
    """*value* as a KQL string literal: backslash escapes, no raw control characters."""
    escaped = []
    for ch in value:
        if ch == "\\":
            escaped.append("\\\\")
        elif ch == '"':
            escaped.append('\\"')
        elif ch == "\n":
            escaped.append("\\n")
        elif ch == "\r":
            escaped.append("\\r")
        elif ch == "\t":
            escaped.append("\\t")
        elif ord(ch) < 32:
            raise KqlError(SYNTAX, f"the string holds control character U+{ord(ch):04X}, which KQL cannot carry in a term")
        else:
            escaped.append(ch)
    return '"' + "".join(escaped) + '"'


def name(identifier: str) -> str:
    """*identifier* as a KQL bracketed name, `['...']`, whatever characters it holds."""
    return "['" + identifier.replace("\\", "\\\\").replace("'", "\\'") + "']"


def apply(text: str, edits: list[tuple[int, int, str]]) -> str:
    """Replace each [start, end) span with its text; spans must not overlap."""
    for start, stop, replacement in sorted(edits, reverse=True):
        text = text[:start] + replacement + text[stop:]
    return text
