"""bag_merge and bag_remove_keys on ClickHouse: DuckDB's MAP(VARCHAR, JSON) of a bag as an array
of (key, raw JSON value) pairs, the bag's JSON text built back from them.

The translator reads a bag as `map_entries(CASE WHEN json_type(x) = 'OBJECT' THEN CAST(x AS
MAP(VARCHAR, JSON)) ELSE MAP {} END)` (its (key, value) entries, none for a non-object), keeps the
first entry of each key (`list_filter(l, lambda e, i: list_position(list_transform(l, lambda e:
e.key), e.key) = i)`) or those whose key is not listed (`NOT list_contains(CAST(keys AS
VARCHAR[]), e.key)`), and writes `to_json(map_from_entries(l))`. On ClickHouse:

- the entries are `JSONExtractKeysAndValuesRaw(x)` for an object and none otherwise (document
  order, compact value texts), `e.key`/`e.value` the pair's first/second element;
- `list_filter` with an index is `arrayFilter((e, i) -> ..., l, arrayEnumerate(l))` and
  `list_position` inside it `indexOf` (jsonlists.py);
- the listed keys of a literal array of strings are `JSONExtract(keys, 'Array(String)')` (another
  literal keeps DuckDB's SQL, which ClickHouse refuses);
- `to_json(map_from_entries(l))` is `'{' || the pairs as toJSONString(key) ':' value, joined by
  ',' || '}'`; a cast of that text to JSON is the text itself.
A map built any other way stays as DuckDB wrote it (ClickHouse refuses it).
"""

from __future__ import annotations

import json

from sqlglot import exp, parse_one

from .jsonlists import indexed_filter

_ENTRIES = ("if(JSONType(ifNull(__x, 'null')) = 'Object', JSONExtractKeysAndValuesRaw(ifNull(__x, '')), "
            "CAST([] AS Array(Tuple(String, String))))")
_TEXT = "concat('{', arrayStringConcat(arrayMap(__kql_p -> concat(toJSONString(__kql_p.1), ':', __kql_p.2), __l), ','), '}')"
_FIELDS = {"key": 1, "value": 2}


def bag_entries(tree: exp.Expr) -> exp.Expr:
    """The translator's bag maps (see the module doc) as arrays of (key, JSON text) pairs."""
    for node in list(tree.find_all(exp.Anonymous)):
        if node.name.lower() == "map_entries" and len(node.expressions) == 1:
            value = _object_map(node.expressions[0])
            if value is not None:
                node.replace(_filled(_ENTRIES, __x=value))
    for kept in list(tree.find_all(exp.ArrayFilter)):
        if _entries(kept.this):
            _listed_keys(kept)
            _fields(kept.expression)
            indexed_filter(kept)
    for mapped in list(tree.find_all(exp.Transform)):
        if _entries(mapped.this):
            _fields(mapped.expression)
    for built in list(tree.find_all(exp.MapFromEntries)):
        pairs = built.this if built.this is not None else (built.expressions or [None])[0]
        parent = built.parent
        if pairs is None or not _entries(pairs) or not (isinstance(parent, exp.Anonymous) and parent.name.lower() == "to_json"):
            continue
        target = parent.parent if isinstance(parent.parent, exp.Cast) and parent.parent.to.this == exp.DType.JSON else parent
        target.replace(_filled(_TEXT, __l=pairs))
    return tree


def _object_map(node: exp.Expr) -> exp.Expr | None:
    """x when *node* is `CASE WHEN json_type(x) = 'OBJECT' THEN CAST(x AS MAP(VARCHAR, JSON)) ELSE MAP {} END`."""
    while isinstance(node, exp.Paren):
        node = node.this
    ifs = node.args.get("ifs") if isinstance(node, exp.Case) else None
    if not ifs or len(ifs) != 1 or node.this is not None:
        return None
    test, then, default = ifs[0].this, ifs[0].args["true"], node.args.get("default")
    if not (isinstance(test, exp.EQ) and isinstance(test.this, exp.JSONType) and test.expression == exp.Literal.string("OBJECT")
            and isinstance(then, exp.Cast) and then.to.this == exp.DType.MAP
            and isinstance(default, exp.Cast) and isinstance(default.this, exp.ToMap) and not default.this.this.expressions):
        return None
    tested, cast = _unwrapped(test.this.this), _unwrapped(then.this)
    return tested if tested == cast else None


def _unwrapped(node: exp.Expr) -> exp.Expr:
    while isinstance(node, exp.Cast) and not isinstance(node, exp.TryCast) and node.to.this == exp.DType.JSON:
        node = node.this
    return node


def _entries(node: exp.Expr | None) -> bool:
    """Whether *node* is a list of a bag's entries as lowered here."""
    if isinstance(node, exp.Paren):
        return _entries(node.this)
    if isinstance(node, exp.If) or (isinstance(node, exp.Anonymous) and node.name.lower() == "if"):
        return "JSONExtractKeysAndValuesRaw" in node.sql("clickhouse")
    if isinstance(node, exp.Anonymous) and node.name == "arrayFilter":
        return len(node.expressions) >= 2 and _entries(node.expressions[1])
    if isinstance(node, exp.ArrayFilter):
        return _entries(node.this)
    if isinstance(node, exp.Flatten):
        return isinstance(node.this, exp.Array) and bool(node.this.expressions) and all(_entries(e) for e in node.this.expressions)
    return False


def _fields(function: exp.Expr) -> None:
    """`e.key`/`e.value` of the lambda's entry parameter as the pair's elements."""
    if not isinstance(function, exp.Lambda):
        return
    entry = function.expressions[0].name
    for dot in list(function.find_all(exp.Dot)):
        if dot.this.name == entry and dot.expression.name in _FIELDS and isinstance(dot.this, exp.Identifier):
            dot.replace(exp.Anonymous(this="tupleElement", expressions=[
                exp.to_identifier(entry), exp.Literal.number(_FIELDS[dot.expression.name])]))


def _listed_keys(node: exp.ArrayFilter) -> None:
    """`list_contains(CAST('<strings>' AS VARCHAR[]), ...)` in the filter as `has(JSONExtract(...), ...)`."""
    for contains in list(node.expression.find_all(exp.ArrayContains)):
        keys = contains.this
        if isinstance(keys, exp.Cast) and keys.to.this == exp.DType.ARRAY:
            literal = _unwrapped(keys.this)
            if isinstance(literal, exp.Literal) and literal.is_string and _strings(literal.this):
                keys.replace(exp.Anonymous(this="JSONExtract", expressions=[literal.copy(), exp.Literal.string("Array(String)")]))


def _strings(text: str) -> bool:
    try:
        items = json.loads(text)
    except ValueError:
        return False
    return isinstance(items, list) and all(isinstance(i, str) for i in items)


def _filled(template: str, **values: exp.Expr) -> exp.Expr:
    return parse_one(template, read="clickhouse").transform(
        lambda n: values[n.name].copy() if isinstance(n, exp.Column) and n.name in values else n)
