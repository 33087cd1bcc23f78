"""`parse` and `extract` on ClickHouse: the named groups of DuckDB's regexp_extract, and the type of
the guards around the strings they read.

`parse s with verb " " path " " code:int` is DuckDB's `regexp_extract(s, '(?P<verb>.*?)\\ ...',
['verb', 'path', 'code'])`: a STRUCT of the named groups ('' each where the pattern does not
match), read as `_parse.verb`. ClickHouse's regexpExtract takes a group's number, and a named
tuple reads the same way (`_parse.verb`), so the struct becomes a tuple of one regexpExtract per
name. Both engines use RE2, which numbers groups as Python's `re` does: the numbers are Python's
`groupindex` of the pattern (a pattern Python cannot read, or that is not a constant, is refused).
"""

from __future__ import annotations

import re

from sqlglot import exp

from .refusals import refuse


def named_groups(tree: exp.Expr) -> exp.Expr:
    """`regexp_extract(s, p, ['a', 'b'])` becomes `CAST(tuple(regexpExtract(s, p, i_a),
    regexpExtract(s, p, i_b)), 'Tuple(a Nullable(String), b Nullable(String))')`."""
    def swap(node: exp.Expr) -> exp.Expr:
        group = node.args.get("group") if isinstance(node, exp.RegexpExtract) else None
        if not isinstance(group, exp.Array):
            return node
        names = [e.this for e in group.expressions if isinstance(e, exp.Literal) and e.is_string]
        pattern = node.expression
        if len(names) != len(group.expressions) or not (isinstance(pattern, exp.Literal) and pattern.is_string):
            refuse("a parse or extract pattern that is not a constant")
        numbers = _group_numbers(pattern.this, names)
        parts = [exp.Anonymous(this="regexpExtract", expressions=[node.this.copy(), pattern.copy(),
                                                                  exp.Literal.number(n)]) for n in numbers]
        fields = ", ".join(f"`{name}` Nullable(String)" for name in names)
        return exp.Anonymous(this="CAST", expressions=[exp.Anonymous(this="tuple", expressions=parts),
                                                      exp.Literal.string(f"Tuple({fields})")])
    return tree.transform(swap, copy=False)


def _group_numbers(pattern: str, names: list[str]) -> list[int]:
    try:
        index = re.compile(pattern).groupindex
    except re.error:
        refuse("this parse or extract pattern")
    if any(name not in index or "`" in name for name in names):
        refuse("a parse or extract group that is not in its pattern")
    return [index[name] for name in names]


def string_guards(tree: exp.Expr) -> exp.Expr:
    """The translator guards a built string with `CASE WHEN <too long> THEN error('kql-limit: ...')
    ELSE concat(...) END`. ClickHouse types `error`'s replacement, throwIf, as UInt8, which makes
    the CASE a Variant(String, UInt8) that no string function takes. As `(throwIf(<too long>,
    message), concat(...)).2` it is a String, and the guard still refuses every row too long
    (concat itself cannot fail, so computing it for such a row first does no harm)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Case) and node.this is None and len(node.args.get("ifs") or []) == 1):
            return node
        branch, default = node.args["ifs"][0], node.args.get("default")
        raised = branch.args.get("true")
        if not (isinstance(default, (exp.Concat, exp.DPipe)) and isinstance(raised, exp.Anonymous)
                and raised.name.lower() == "error" and raised.expressions):
            return node
        guard = exp.Anonymous(this="throwIf", expressions=[
            exp.func("ifNull", branch.this, exp.false()), raised.expressions[0]])
        pair = exp.Tuple(expressions=[guard, default])
        return exp.Anonymous(this="tupleElement", expressions=[pair, exp.Literal.number(2)])
    return tree.transform(swap, copy=False)
