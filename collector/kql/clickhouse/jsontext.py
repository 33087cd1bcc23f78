"""Dynamic values written in the query, on ClickHouse: JSON text, as the store's dynamic columns are.

The translator writes `dynamic([1, 2])` as DuckDB's `CAST('[1, 2]' AS JSON)`: JSON text that DuckDB
has checked. sqlglot makes that a cast to ClickHouse's JSON type, an object store that refuses
arrays and scalars. The store's own dynamic columns are JSON text in String columns
(scoping.READ_TYPES), so a literal is lowered to the same: its text, once Python's strict JSON
parser (the grammar DuckDB checks) accepts it; a text that is not JSON stays as it was, and
ClickHouse refuses it.
"""

from __future__ import annotations

import json

from sqlglot import exp


def json_literals(tree: exp.Expr) -> exp.Expr:
    """`CAST('<JSON text>' AS JSON)` (cast once or more) becomes the text itself."""
    def swap(node: exp.Expr) -> exp.Expr:
        inner = node
        while isinstance(inner, (exp.Cast, exp.TryCast)) and inner.to.this == exp.DType.JSON:
            inner = inner.this
        if inner is not node and isinstance(inner, exp.Literal) and inner.is_string and _is_json(inner.this):
            return inner
        return node
    return tree.transform(swap, copy=False)


_DUCKDB_TYPES = {"Array": "ARRAY", "Object": "OBJECT", "String": "VARCHAR", "Int64": "BIGINT",
                 "UInt64": "UBIGINT", "Double": "DOUBLE", "Bool": "BOOLEAN", "Null": "NULL"}


def json_functions(tree: exp.Expr) -> exp.Expr:
    """DuckDB's JSON functions over JSON text as ClickHouse's: `json_type` answers DuckDB's names
    (ARRAY, OBJECT, VARCHAR, BIGINT...) from `JSONType`'s (Array, Object, String, Int64...) of the
    text (a cast to JSON dropped: ClickHouse's JSON object type answers 'Null' there), a whole
    number not below 0 UBIGINT as in DuckDB;
    `json_keys` is `JSONExtractKeys` (document order in both) of the text, a NULL read as '' (its
    array cannot be Nullable in ClickHouse; the translator asks for keys only under a
    `json_type(x) = 'OBJECT'` guard, which a NULL fails in both); `json_array_length` is `JSONLength`
    for an array and 0 for anything else, as DuckDB answers."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.JSONType) and not node.expression:
            names = [exp.Literal.string(k) for k in _DUCKDB_TYPES]
            duckdb_names = [exp.Literal.string(v) for v in _DUCKDB_TYPES.values()]
            text = _unjson(node.this)
            named = exp.Anonymous(this="transform", expressions=[
                exp.Anonymous(this="JSONType", expressions=[text]), exp.Array(expressions=names),
                exp.Array(expressions=duckdb_names), exp.Null()])
            # DuckDB types a whole number that is not negative UBIGINT; ClickHouse says Int64.
            unsigned = exp.and_(exp.EQ(this=named.copy(), expression=exp.Literal.string("BIGINT")),
                                exp.GTE(this=exp.Anonymous(this="JSONExtractInt", expressions=[text.copy()]),
                                        expression=exp.Literal.number(0)))
            return exp.func("if", unsigned, exp.Literal.string("UBIGINT"), named)
        if isinstance(node, exp.JSONKeys) and not node.expressions:
            return exp.Anonymous(this="JSONExtractKeys", expressions=[_text(node.this)])
        if isinstance(node, exp.Anonymous) and node.name.lower() == "json_array_length" and len(node.expressions) == 1:
            value = node.expressions[0]
            is_array = exp.EQ(this=exp.Anonymous(this="JSONType", expressions=[value]), expression=exp.Literal.string("Array"))
            return exp.func("if", is_array, exp.Anonymous(this="JSONLength", expressions=[value.copy()]),
                            exp.Literal.number(0))
        return node
    return tree.transform(swap, copy=False)


def missing_members(tree: exp.Expr) -> exp.Expr:
    """DuckDB's `json_extract(x, path)` is NULL where x has no such member (`d["model"]` of a bag
    without it); sqlglot's `JSONExtractRaw` answers '' there, which the query API shows as "".
    A JSON value's text is never empty, so `nullIf(JSONExtractRaw(...), '')` is DuckDB's answer."""
    for node in list(tree.find_all(exp.JSONExtract)):
        if not isinstance(node.parent, exp.Nullif):
            node.replace(exp.Nullif(this=node.copy(), expression=exp.Literal.string("")))
    return tree


def _text(value: exp.Expr) -> exp.Expr:
    """*value* as the JSON text it holds, a NULL read as ''."""
    return exp.func("ifNull", _unjson(value), exp.Literal.string(""))


def _unjson(value: exp.Expr) -> exp.Expr:
    """*value* without its casts to JSON: the store's dynamic columns are JSON text already (and a
    value of another type then fails in ClickHouse, a 400, as it must not be read as JSON). Only
    CAST: DuckDB's fails on a text that is not JSON, so where it answers the text is JSON; a
    TRY_CAST (NULL for such a text, where ClickHouse's JSONType answers 'Null') stays."""
    while isinstance(value, exp.Cast) and not isinstance(value, exp.TryCast) and value.to.this == exp.DType.JSON:
        value = value.this
    return value


def _is_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return False
    return True


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
