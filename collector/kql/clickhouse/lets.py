"""The translator's one-value lambdas, `list_transform([e], lambda v: body)[1]` (a LET: e named v
in body), where ClickHouse needs them handled.

- `typed_lets`: a body dispatching on `typeof(v)` when e's DuckDB type is fixed by its function
  and sqlglot's type inference (typing.fold_typeof) does not know it: `regexp_extract(...)`
  (extract() with a typeof target) is always VARCHAR. A field of series_stats' bag (the
  translator's `json_extract(__kql_m<k>, '$.min')`, the bag udfs.py builds) is a number or null:
  read as a Float64 (`JSONExtract(bag, 'min', 'Nullable(Float64)')`, exact for the indexes too)
  and typed DOUBLE. The test is folded here, so only the live branch reaches ClickHouse.
- `guarded_lets`: a body with a raising branch, inlined (see its doc).
"""

from __future__ import annotations

import re

from sqlglot import exp

from . import typing as typed


def typed_lets(tree: exp.Expr) -> exp.Expr:
    """`typeof(v)` inside a LET of a regexp_extract or a json_extract is its DuckDB type (see the
    module doc); the constant tests it makes are folded (typing.fold_constants)."""
    found = False
    for node in list(tree.find_all(exp.Transform)):
        let = _let(node.parent) if isinstance(node.parent, exp.Bracket) else None
        kind = _fixed_type(let[0]) if let is not None else None
        if let is None or kind is None:
            continue
        field = _stats_field(let[0])
        if field is not None:
            let[0].replace(exp.Anonymous(this="JSONExtract", expressions=[
                let[0].this.copy(), exp.Literal.string(field), exp.Literal.string("Nullable(Float64)")]))
        for test in list(let[2].find_all(exp.Typeof)):
            if isinstance(test.this, (exp.Identifier, exp.Column)) and test.this.name == let[1]:
                test.replace(exp.Literal.string(kind))
                found = True
    return typed.fold_constants(tree) if found else tree


def guarded_lets(tree: exp.Expr) -> exp.Expr:
    """The translator names a value once as `list_transform([e], lambda v: body)[1]`; totimespan's
    body has a `CASE` with a raising branch (a tick finer than DuckDB keeps: `error(...)`, lowered
    to `throwIf(materialize(1), ...)` by rules.limit_errors). ClickHouse evaluates every branch of
    a CASE inside a lambda, so the raise would fire for every value: such a body is inlined (v
    replaced by e, which the translator writes without side effects), where ClickHouse's CASE only
    evaluates the branch taken. Runs last, over the lowered tree."""
    def swap(node: exp.Expr) -> exp.Expr:
        let = _let(node)
        if let is None:
            return node
        value, name, body = let
        if not any(_raises(n) for n in body.walk()):
            return node
        inlined = body.copy()
        for ref in list(inlined.find_all(exp.Column, exp.Identifier)):
            if ref.name == name and not (isinstance(ref, exp.Identifier) and isinstance(ref.parent, exp.Column)):
                ref.replace(exp.Paren(this=value.copy()))
        return exp.Paren(this=inlined.transform(swap))
    return tree.transform(swap, copy=False)


def _fixed_type(value: exp.Expr) -> str | None:
    if isinstance(value, exp.RegexpExtract):
        return "VARCHAR"
    return "DOUBLE" if _stats_field(value) is not None else None


_STATS_FIELDS = {"min", "min_idx", "max", "max_idx", "avg", "stdev", "variance"}


def _stats_field(value: exp.Expr) -> str | None:
    """The field name of `json_extract(__kql_m<k>, '$.<series_stats field>')`, else None."""
    if not (isinstance(value, exp.JSONExtract) and isinstance(value.this, exp.Column)
            and re.fullmatch(r"__kql_m\d+", value.this.name) and isinstance(value.expression, exp.JSONPath)):
        return None
    parts = value.expression.expressions
    if len(parts) == 2 and isinstance(parts[0], exp.JSONPathRoot) and isinstance(parts[1], exp.JSONPathKey) \
            and parts[1].this in _STATS_FIELDS:
        return str(parts[1].this)
    return None


def _raises(node: exp.Expr) -> bool:
    return (isinstance(node, exp.Anonymous) and node.name == "throwIf" and bool(node.expressions)
            and isinstance(node.expressions[0], exp.Anonymous) and node.expressions[0].name == "materialize")


def _let(node: exp.Expr) -> tuple[exp.Expr, str, exp.Expr] | None:
    if not (isinstance(node, exp.Bracket) and node.expressions == [exp.Literal.number(0)]
            and isinstance(node.this, exp.Transform)):
        return None
    array, function = node.this.this, node.this.expression
    if not (isinstance(array, exp.Array) and len(array.expressions) == 1 and isinstance(function, exp.Lambda)
            and len(function.expressions) == 1):
        return None
    return array.expressions[0], function.expressions[0].name, function.this
