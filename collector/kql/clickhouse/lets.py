"""The translator's one-value lambdas, `list_transform([e], lambda v: body)[1]` (a LET: e named v
in body), where ClickHouse needs them handled.

- `text_lets`: a body dispatching on `typeof(v)` when e is `regexp_extract(...)` (extract() with a
  typeof target): DuckDB's regexp_extract is always VARCHAR, which sqlglot's type inference
  (typing.fold_typeof) does not know; the test is folded here so only the VARCHAR branch remains.
- `guarded_lets`: a body with a raising branch, inlined (see its doc).
"""

from __future__ import annotations

from sqlglot import exp

from . import typing as typed


def text_lets(tree: exp.Expr) -> exp.Expr:
    """`typeof(v)` inside a LET of a regexp_extract is 'VARCHAR' (see the module doc); the constant
    tests it makes are folded (typing.fold_constants)."""
    found = False
    for node in list(tree.find_all(exp.Transform)):
        let = _let(node.parent) if isinstance(node.parent, exp.Bracket) else None
        if let is None or not isinstance(let[0], exp.RegexpExtract):
            continue
        for test in list(let[2].find_all(exp.Typeof)):
            if isinstance(test.this, (exp.Identifier, exp.Column)) and test.this.name == let[1]:
                test.replace(exp.Literal.string("VARCHAR"))
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
