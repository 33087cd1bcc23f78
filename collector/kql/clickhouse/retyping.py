"""`typeof()` folded until nothing more folds: a type test whose argument holds another type test.

`evaluate narrow` packs each cell as `tostring(column)`, which the translator writes as
`coalesce(CASE typeof(x) WHEN 'JSON' ... ELSE CAST(x AS VARCHAR) END, '')`, and bag_pack then asks
`typeof()` of that. sqlglot cannot type the CASE while its dead branches (a list_transform over an
interval, `->>` of a JSON) are in it, so one pass of typing.fold_typeof folds the inner test only
and the outer one, with its timestamp and interval branches over a String, reached ClickHouse (which
type-checks every branch and refused the query). Once the inner CASE is folded to its live branch
the outer argument is typed: so the folding runs again while it still removes type tests.

pack_array then asks `typeof()` of each bag: `CASE WHEN <too long> THEN error(...) ELSE
json_object(...) END`, which sqlglot does not type either. In DuckDB `json_object`/`json_array`
answer JSON and `error()` answers SQL NULL (any type), so that CASE is JSON: such a `typeof()` is
folded to 'JSON' here before each pass, and the `to_json(...)` of such a value that the folding
leaves is the value itself (DuckDB's to_json of JSON; ClickHouse's toJSONString of the JSON text
would quote it as a string). The `error()` branches of such a CASE become `CAST(error(...) AS
VARCHAR)` (the same in DuckDB, where error() never returns): on ClickHouse the limit's `throwIf`
is a number, and a CASE of a number and a String is a Variant, which mv-expand cannot read.
"""

from __future__ import annotations

from sqlglot import exp

from .typing import fold_typeof

_MAX_PASSES = 4


def fold_typeof_nested(tree: exp.Expr) -> exp.Expr:
    """typing.fold_typeof, repeated while a pass folds a `typeof()` away (at most _MAX_PASSES)."""
    left = _type_tests(tree)
    for _ in range(_MAX_PASSES):
        for node in list(tree.find_all(exp.Typeof)):
            if _built_json(node.this):
                node.replace(exp.Literal.string("JSON"))
        tree = fold_typeof(tree)
        now = _type_tests(tree)
        if now in (0, left):
            break
        left = now
    for call in list(tree.find_all(exp.Anonymous)):
        if call.name.lower() == "to_json" and len(call.expressions) == 1 and _built_json(call.expressions[0]):
            call.replace(call.expressions[0])
    for case in list(tree.find_all(exp.Case)):
        if _built_json(case):
            for branch in [*(case.args.get("ifs") or []), case]:
                key = "default" if branch is case else "true"
                value = branch.args.get(key)
                if isinstance(value, exp.Anonymous) and value.name.lower() == "error":
                    branch.set(key, exp.Cast(this=value, to=exp.DataType.build("VARCHAR")))
    return tree


def _type_tests(tree: exp.Expr) -> int:
    return sum(1 for _ in tree.find_all(exp.Typeof))


def _built_json(node: exp.Expr) -> bool:
    """A value DuckDB types JSON: json_object/json_array, or a CASE whose every branch is one of
    them or an `error()` call."""
    while isinstance(node, exp.Paren):
        node = node.this
    if isinstance(node, (exp.JSONObject, exp.JSONArray)):
        return True
    if not isinstance(node, exp.Case) or node.this is not None or node.args.get("default") is None:
        return False
    branches = [branch.args["true"] for branch in node.args.get("ifs") or []] + [node.args["default"]]
    built = [b for b in branches if not (isinstance(b, exp.Anonymous) and b.name.lower() == "error")]
    return bool(built) and all(_built_json(b) for b in built)
