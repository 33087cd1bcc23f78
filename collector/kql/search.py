"""`search`, as the documented `union`/`where` it stands for.

    search "err"                      where * has "err"        (every table, adds $table)
    search in (T1, T2) "err"          union withsource=$table T1, T2 | where * has "err"
    T | search "err"                  T | where * has "err"    (no $table)
    search col:"err"                  where col has "err"
    "err*" / "*err" / "*err*"         hasprefix / hassuffix / contains
    "Lab*PC"                          matches regex @"\\bLab.*PC\\b"
    search *                          every row
    kind=case_sensitive               has_cs, hasprefix_cs, hassuffix_cs, contains_cs

`* has "err"` is spelt out over the string and dynamic columns of the input (looked up with
`columns.describe`), so a term becomes `(c1 has "err" or c2 has "err" ...)`. Everything else in
the predicate (`x == 1`, `and`/`or`/`not`, parentheses) is kept as written. The term is re-quoted
with `syntax.string` and every column with `syntax.name`.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable
from typing import Any

from collector.store.schema import TABLES

from . import syntax
from .errors import SEMANTIC, UNSUPPORTED, KqlError, position

Columns = Callable[[str], list[tuple[str, str]]]

# Rules an operand passes through on its way up to the predicate without changing its meaning.
_LOGICAL = frozenset({"LogicalOrExpression", "LogicalAndExpression", "LogicalOrOperation",
                      "LogicalAndOperation", "ParenthesizedExpression", "ArgumentExpression"})
_SEARCHED_TYPES = ("string", "dynamic")


def rewrite(text: str, node: Any, columns_of: Columns) -> str:
    """*text* with the `search` operator *node* replaced by its union/where form."""
    case_sensitive = _case_sensitive(text, node)
    predicate = _predicate(node)
    statement = syntax.statement_of(node)
    before = text[:statement.start.start]
    piped = node.parentCtx
    while piped is not None and syntax.kind(piped) not in ("PipedOperator", "BeforePipeExpression"):
        piped = piped.parentCtx
    if piped is not None and syntax.kind(piped) == "PipedOperator":
        pipe = piped.parentCtx
        source = text[pipe.start.start:piped.start.start].rstrip()
        head = None
    else:
        source = head = _union(text, node)
    columns = [(n, t) for n, t in columns_of(before + source) if n != "$table"]
    searched = [n for n, t in columns if t in _SEARCHED_TYPES]
    condition = _condition(text, predicate, searched, case_sensitive) if predicate is not None else "true"
    start, end = syntax.bounds(node)
    replacement = f"{head} | where {condition}" if head else f"where {condition}"
    return text[:start] + replacement + text[end:]


def _case_sensitive(text: str, node: Any) -> bool:
    for param in syntax.children(node, "RelaxedQueryOperatorParameter"):
        key, _, value = syntax.span(text, param).partition("=")
        key, value = key.strip().lower(), value.strip().lower()
        if key != "kind" or value not in ("default", "case_insensitive", "case_sensitive"):
            line, pos = position(text, param.start.start)
            raise KqlError(SEMANTIC, f"search: unknown parameter '{syntax.span(text, param)}'", line, pos)
        return value == "case_sensitive"
    return False


def _predicate(node: Any) -> Any | None:
    kids = [k for k in syntax.children(node)
            if syntax.kind(k) not in ("RelaxedQueryOperatorParameter", "SearchOperatorInClause")]
    if not kids or syntax.kind(kids[-1]) == "StarExpression":
        return None
    return kids[-1]


def _union(text: str, node: Any) -> str:
    clause = syntax.first(node, "SearchOperatorInClause")
    if clause is None:
        tables = list(TABLES)
    else:
        tables = []
        for source in syntax.children(clause):
            raw = syntax.span(text, source).strip()
            if "*" in raw and not raw.startswith("["):
                tables.extend(t for t in TABLES if fnmatch.fnmatchcase(t, raw) and t not in tables)
            else:
                tables.append(raw)
        if not tables:
            line, pos = position(text, clause.start.start)
            raise KqlError(SEMANTIC, "search: no table matches the 'in' list", line, pos)
    return "union withsource=$table " + ", ".join(tables)


def _condition(text: str, predicate: Any, columns: list[str], case_sensitive: bool) -> str:
    base = predicate.start.start
    edits = []
    for lit in syntax.descendants(predicate, "StringLiteralExpression"):
        if _is_term(lit, predicate):
            s, e = syntax.bounds(lit)
            edits.append((s - base, e - base, _term(syntax.string_value(lit), columns, case_sensitive)))
    for op in syntax.descendants(predicate, "StringBinaryOperation"):
        if syntax.tokens(op)[:1] != [":"]:
            continue
        parent = op.parentCtx
        left = syntax.children(parent)[0]
        literal = syntax.first(op, "StringLiteralExpression")
        if literal is None or not syntax.same_span(_innermost(syntax.children(op)[0]), literal):
            line, pos = position(text, op.start.start)
            raise KqlError(UNSUPPORTED, "unsupported operator: search Column:Value needs a string "
                           "literal value", line, pos)
        s, e = syntax.bounds(parent)
        column = syntax.span(text, left).strip()
        edits.append((s - base, e - base,
                      _term(syntax.string_value(literal), [column], case_sensitive, quoted=True)))
    return "(" + syntax.apply(syntax.span(text, predicate), edits) + ")"


def _innermost(node: Any) -> Any:
    while True:
        kids = syntax.children(node)
        if len(kids) != 1 or not syntax.same_span(kids[0], node):
            return node
        node = kids[0]


def _is_term(literal: Any, predicate: Any) -> bool:
    """A bare string operand of the predicate's and/or/not, not part of a comparison or call."""
    node = literal
    for up in syntax.ancestors(literal):
        if up is predicate.parentCtx:
            return True
        kids = syntax.children(up)
        passthrough = len(kids) == 1 and syntax.same_span(kids[0], node)
        named_not = (syntax.kind(up) == "NamedFunctionCallExpression"
                     and syntax.name_text(syntax.children(up)[0]).lower() == "not")
        if not (passthrough or syntax.kind(up) in _LOGICAL or named_not
                or (syntax.kind(up) == "NamedExpression" and len(kids) == 1)):
            return False
        node = up
    return False


def _term(value: str, columns: list[str], case_sensitive: bool, quoted: bool = False) -> str:
    """`(c1 has "v" or c2 has "v" ...)` with the operator the term's wildcards ask for."""
    core = value.strip("*")
    suffix = "_cs" if case_sensitive else ""
    if value == "*" or not core:
        return "true"
    if value.startswith("*") and value.endswith("*"):
        op, operand = "contains" + suffix, syntax.string(core)
    elif value.startswith("*"):
        op, operand = "hassuffix" + suffix, syntax.string(core)
    elif value.endswith("*"):
        op, operand = "hasprefix" + suffix, syntax.string(core)
    elif "*" in value:
        regex = r"\b" + ".*".join(re.escape(p) for p in value.split("*")) + r"\b"
        op, operand = "matches regex", syntax.string(("" if case_sensitive else "(?i)") + regex)
    else:
        op, operand = "has" + suffix, syntax.string(value)
    if not columns:
        return "false"
    names = columns if quoted else [syntax.name(c) for c in columns]
    return "(" + " or ".join(f"{c} {op} {operand}" for c in names) + ")"
