"""set_union/set_intersect/set_difference of dynamic arrays written in the query, on ClickHouse:
DuckDB's JSON[] lists as arrays of JSON texts (what expansions.py expands a value into).

The translator reads each argument as `CASE WHEN json_type(a) = 'ARRAY' THEN CAST(a AS JSON[]) END`
(NULL for a non-array) and keeps the items that come first (`list_filter(l, lambda x, i:
list_position(l, x) = i)`), tested with `list_contains`, written back with `to_json`.

- Over a `dynamic([...])` literal that is an array, the CASE is `JSONExtractArrayRaw(a)` (its
  items' compact texts, the texts DuckDB compares); over anything else (a column, a literal that
  is not an array) it stays as DuckDB wrote it, and ClickHouse refuses it.
- `list_filter` with an index parameter is ClickHouse's `arrayFilter((x, i) -> ..., l,
  arrayEnumerate(l))` (1-based in both); inside it `list_position(l, x)` is `indexOf(l, x)`, which
  finds x as DuckDB does (0 instead of NULL when absent: both fail `= i`).
- `to_json` of such a list (built only from those items) is `'[' || arrayStringConcat(l, ',') ||
  ']'`, and a cast of that text to JSON is the text itself.
"""

from __future__ import annotations

import json

from sqlglot import exp


def json_lists(tree: exp.Expr) -> exp.Expr:
    """The translator's set functions over literal dynamic arrays (see the module doc)."""
    for case in list(tree.find_all(exp.Case)):
        items = _literal_items(case)
        if items is not None:
            case.replace(items)
    for kept in list(tree.find_all(exp.ArrayFilter)):
        if _json_list(kept.this):
            indexed_filter(kept)
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() == "to_json" and len(node.expressions) == 1 and _json_list(node.expressions[0]):
            text = exp.Anonymous(this="concat", expressions=[
                exp.Literal.string("["), exp.Anonymous(this="arrayStringConcat", expressions=[node.expressions[0].copy(), exp.Literal.string(",")]),
                exp.Literal.string("]")])
            target = node.parent if isinstance(node.parent, exp.Cast) and node.parent.to.this == exp.DType.JSON else node
            target.replace(text)
    return tree


def _literal_items(case: exp.Case) -> exp.Expr | None:
    """`JSONExtractArrayRaw('<array text>')` when *case* is the translator's array test of a
    literal that is a JSON array, else None."""
    ifs = case.args.get("ifs") or []
    if case.this is not None or case.args.get("default") is not None or len(ifs) != 1:
        return None
    test, then = ifs[0].this, ifs[0].args["true"]
    if not (isinstance(test, exp.EQ) and isinstance(test.this, exp.JSONType) and test.expression == exp.Literal.string("ARRAY")
            and isinstance(then, exp.Cast) and then.to.this == exp.DType.ARRAY
            and [t.this for t in then.to.expressions] == [exp.DType.JSON]):
        return None
    tested, cast = _unwrapped(test.this.this), _unwrapped(then.this)
    if not (isinstance(tested, exp.Literal) and tested.is_string and tested == cast and _is_array(tested.this)):
        return None
    return exp.Anonymous(this="JSONExtractArrayRaw", expressions=[tested.copy()])


def _unwrapped(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Cast) and node.to.this == exp.DType.JSON:
        node = node.this
    return node


def _is_array(text: str) -> bool:
    try:
        return isinstance(json.loads(text), list)
    except ValueError:
        return False


def indexed_filter(node: exp.ArrayFilter) -> None:
    """`list_filter(l, lambda x, i: ...)` as `arrayFilter((x, i) -> ..., l, arrayEnumerate(l))`."""
    function = node.expression
    if not (isinstance(function, exp.Lambda) and len(function.expressions) == 2):
        return
    for position in list(function.find_all(exp.Anonymous)):
        if position.name.lower() == "list_position" and len(position.expressions) == 2:
            position.replace(exp.Anonymous(this="indexOf", expressions=position.expressions))
    array = node.this
    node.replace(exp.Anonymous(this="arrayFilter", expressions=[
        function.copy(), array.copy(), exp.Anonymous(this="arrayEnumerate", expressions=[array.copy()])]))


def _json_list(node: exp.Expr) -> bool:
    """Whether *node* is a list built only from literal arrays' items (see the module doc)."""
    if isinstance(node, exp.Paren):
        return _json_list(node.this)
    if isinstance(node, exp.Anonymous):
        if node.name == "JSONExtractArrayRaw":
            return True
        return node.name == "arrayFilter" and len(node.expressions) >= 2 and _json_list(node.expressions[1])
    if isinstance(node, exp.ArrayFilter):
        return _json_list(node.this)
    if isinstance(node, exp.Flatten):
        return isinstance(node.this, exp.Array) and all(_json_list(e) for e in node.this.expressions)
    return False
