"""Two checks Kusto's analyzer makes and DuckDB would not: the case of names, and dynamic
grouping keys.

- Column names are case-sensitive in Kusto (`Message` is not `message`); DuckDB resolves
  identifiers case-insensitively, so without this check `traces | project Message` would
  answer. A name the query refers to that is neither a column of our tables nor declared by
  the query itself (by `extend`, `let`, `project`, `summarize`, a parameter...), but matches one
  of those in another case, is refused with "did you mean".
- `summarize ... by customDimensions.model` groups by a dynamic value, which Kusto refuses
  ("use an explicit cast"). The key is refused when it is a dynamic column of our tables, a
  property path into one, or a call of a function that returns dynamic; a name the query
  declares itself is not judged (its type is the query's business).
"""

from __future__ import annotations

from typing import Any

from collector.store.schema import TABLES

from . import syntax
from .errors import SEMANTIC, KqlError, position

_COLUMNS = frozenset({c for t in TABLES.values() for c in t.column_names} | set(TABLES))
_DYNAMIC_COLUMNS = frozenset({c.name for t in TABLES.values() for c in t.columns if c.kql_type == "dynamic"})
_DYNAMIC_FUNCTIONS = frozenset({
    "parse_json", "todynamic", "dynamic", "pack", "bag_pack", "pack_array", "pack_all", "split",
    "extract_all", "bag_keys", "bag_merge", "bag_remove_keys", "set_union", "set_intersect",
    "set_difference", "array_concat", "array_slice", "zip", "make_list", "make_set", "make_bag",
})
_PATH_KINDS = ("PathExpression", "PathReferenceWithDataScope", "FunctionCallOrPathPathExpression",
               "MemberAccessExpression", "ElementExpression")


def check(text: str, tree: Any) -> None:
    """Raise a SEMANTIC KqlError for a name in the wrong case or a dynamic grouping key."""
    declared = _declared(tree)
    known = _COLUMNS | declared
    lowered: dict[str, str] = {}
    for name in sorted(known):
        lowered.setdefault(name.lower(), name)
    for ref in syntax.descendants(tree, "SimpleNameReference"):
        name = syntax.name_text(syntax.children(ref)[0])
        if name in known or _is_callee(ref) or _after_dot(text, ref):
            continue
        suggestion = lowered.get(name.lower())
        if suggestion is not None:
            line, pos = position(text, ref.start.start)
            raise KqlError(SEMANTIC, f"unknown column '{name}' (names are case-sensitive: "
                           f"did you mean '{suggestion}'?)", line, pos)
    for clause in syntax.descendants(tree, "SummarizeOperatorByClause"):
        for key in syntax.children(clause, "NamedExpression"):
            _check_key(text, key, declared)


def _declared(tree: Any) -> set[str]:
    """Every identifier the query spells outside a reference: what it declares."""
    out = set()
    for ident in syntax.descendants(tree, "IdentifierName"):
        if not any(syntax.kind(a) == "SimpleNameReference" for a in _up(ident, 3)):
            out.add(syntax.name_text(ident))
    return out


def _up(node: Any, levels: int):
    for _ in range(levels):
        node = node.parentCtx
        if node is None:
            return
        yield node


def _is_callee(ref: Any) -> bool:
    parent = ref.parentCtx
    return syntax.kind(parent) == "NamedFunctionCallExpression" and syntax.children(parent)[0] is ref


def _after_dot(text: str, ref: Any) -> bool:
    before = text[:ref.start.start].rstrip()
    return before.endswith(".") or before.endswith("$left") or before.endswith("$right")


def _check_key(text: str, key: Any, declared: set[str]) -> None:
    if syntax.first(key, "NamedExpressionNameClause") is not None:
        expression = syntax.children(key)[-1]
    else:
        expression = key
    written = syntax.span(text, expression).strip()
    if not _is_dynamic(text, expression, written, declared):
        return
    line, pos = position(text, expression.start.start)
    raise KqlError(SEMANTIC, f"summarize: the group key '{written}' is of type dynamic; use an explicit "
                   f"cast, e.g. 'by tostring({written})'", line, pos)


def _is_dynamic(text: str, expression: Any, written: str, declared: set[str]) -> bool:
    if written in _DYNAMIC_COLUMNS:
        return written not in declared
    call = syntax.first(expression, "NamedFunctionCallExpression")
    if call is not None and syntax.same_span(call, expression):
        return syntax.name_text(syntax.children(call)[0]) in _DYNAMIC_FUNCTIONS
    root = written.split(".", 1)[0].split("[", 1)[0].strip()
    is_path = written != root and all(ch not in written for ch in " (+-*/<>=!")
    return is_path and root in _DYNAMIC_COLUMNS and root not in declared
