"""`make_bag`/`make_bag_if` on ClickHouse: the property bags of the rows merged into one JSON
object, written as its text (the store's dynamic columns are JSON text, jsontext.py).

The translator merges DuckDB MAPs: `coalesce(CAST(to_json(list_reduce(list(CAST(x AS MAP(VARCHAR,
JSON))) FILTER (WHERE json_type(x) = 'OBJECT' ...), lambda a, b: map_concat(a, b))) AS JSON),
'{}')`: the keys in the order first seen, each with the value of the last row that has it
(`map_concat` keeps a's keys in place and takes b's value), `{}` over no object. ClickHouse has no
such map of JSON values; the same bag is built from the rows' (key, raw value) pairs
(`JSONExtractKeysAndValuesRaw`), gathered under the same filter: the distinct keys in first-seen
order, each `toJSONString(key) || ':' || <the last pair's value>`. Rows come in the order each
engine reads them, as `list` does in DuckDB (Kusto picks an arbitrary value for a key in two
rows). Where DuckDB fails (it casts every row's value to a MAP before filtering, so a row holding
an array is an error there), ClickHouse answers the bag of the object rows, Kusto's answer.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

_BAG = ("concat('{', arrayStringConcat(arrayMap(__kql_k -> concat(toJSONString(__kql_k), ':', "
        "arrayLast(__kql_e -> __kql_e.1 = __kql_k, __pairs).2), arrayDistinct(arrayMap(__kql_e -> __kql_e.1, __pairs))), ','), '}')")


def merged_bags(tree: exp.Expr) -> exp.Expr:
    """The translator's make_bag (see the module doc) as the JSON text of the merged bag."""
    for node in list(tree.find_all(exp.Coalesce)):
        found = _merged(node)
        if found is None:
            continue
        value, condition = found
        pairs = exp.Anonymous(this="arrayFlatten", expressions=[exp.Filter(
            this=exp.ArrayAgg(this=exp.Anonymous(this="JSONExtractKeysAndValuesRaw", expressions=[
                exp.func("ifNull", value.copy(), exp.Literal.string(""))])),
            expression=exp.Where(this=condition.copy()))])
        node.replace(parse_one(_BAG, read="clickhouse").transform(
            lambda n, p=pairs: p.copy() if isinstance(n, exp.Column) and n.name == "__pairs" else n))
    return tree


def _merged(node: exp.Coalesce) -> tuple[exp.Expr, exp.Expr] | None:
    """(x, the FILTER's condition) when *node* is the translator's make_bag of x, else None."""
    cast = node.this
    if not (isinstance(cast, exp.Cast) and cast.to.this == exp.DType.JSON and isinstance(cast.this, exp.Anonymous)
            and cast.this.name.lower() == "to_json" and len(node.expressions) == 1):
        return None
    reduce = cast.this.expressions[0] if len(cast.this.expressions) == 1 else None
    if not (isinstance(reduce, exp.Anonymous) and reduce.name.lower() == "list_reduce" and len(reduce.expressions) == 2):
        return None
    rows, merge = reduce.expressions
    if not (isinstance(merge, exp.Lambda) and isinstance(merge.this, exp.Anonymous) and merge.this.name.lower() == "map_concat"
            and [e.name for e in merge.this.expressions] == [p.name for p in merge.expressions]
            and isinstance(rows, exp.Filter) and isinstance(rows.this, exp.ArrayAgg)):
        return None
    to_map = rows.this.this
    if not (isinstance(to_map, exp.Cast) and to_map.to.this == exp.DType.MAP):
        return None
    value = to_map.this
    while isinstance(value, exp.Cast) and value.to.this == exp.DType.JSON:
        value = value.this
    return value, rows.expression.this
