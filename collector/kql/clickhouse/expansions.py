"""mv-expand and bag_unpack on ClickHouse: the translator's list of a dynamic value's items as an
array of JSON texts, which is what the store's dynamic columns hold (jsontext.py).

The translator expands a dynamic value x into DuckDB's JSON[]:
`CAST(CASE json_type(x) WHEN 'ARRAY' THEN json_extract(x, '$[*]') WHEN 'OBJECT' THEN
list_transform(json_keys(x), lambda k: json_object(k, json_extract(x, ...))) ELSE json_array(x) END
AS JSON[])`: an array's items, an object's one-key bags, or x itself. sqlglot has no ClickHouse
form for the JSON path wildcard nor the lambda over `json_object`, so the whole expression becomes
`multiIf(JSONType(x) = 'Array', JSONExtractArrayRaw(x), JSONType(x) = 'Object',
arrayMap(kv -> concat('{', toJSONString(kv.1), ':', kv.2, '}'), JSONExtractKeysAndValuesRaw(x)), [x])`:
the same items as compact JSON texts, in document order (a SQL NULL x is one NULL item in both,
as DuckDB's `json_array(NULL)` is `[null]`).

DuckDB zips the UNNESTs of one SELECT; ClickHouse multiplies distinct `arrayJoin`s. `with_itemindex`
(the items next to `generate_series(0, n - 1)`) is one `arrayJoin(arrayZip(items, 0..n-1))`; a
SELECT that expands a value and unnests anything else (mv-expand of two columns) is refused.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

from .refusals import refuse

_ITEMS = parse_one(
    "multiIf(JSONType(ifNull(__x, 'null')) = 'Array', JSONExtractArrayRaw(ifNull(__x, '')),"
    " JSONType(ifNull(__x, 'null')) = 'Object',"
    " arrayMap(__kql_kv -> concat('{', toJSONString(__kql_kv.1), ':', __kql_kv.2, '}'),"
    " JSONExtractKeysAndValuesRaw(ifNull(__x, ''))), [__x])", read="clickhouse")


def expanded_items(tree: exp.Expr) -> exp.Expr:
    """The translator's JSON[] of a dynamic value's items (see the module doc) as ClickHouse's
    array of JSON texts; with_itemindex zipped to it, other SELECTs unnesting it next to another
    array refused."""
    made: list[tuple[exp.Expr, exp.Expr]] = []

    def swap(node: exp.Expr) -> exp.Expr:
        value = _expanded_value(node)
        if value is None:
            return node
        made.append((_ITEMS.copy().transform(
            lambda n: value.copy() if isinstance(n, exp.Column) and n.name == "__x" else n), value))
        return made[-1][0]
    lowered = tree.transform(swap, copy=False)
    for items, value in made:
        select = items.parent_select
        if select is not None:
            _zip_item_index(select, items, value)
    for items, _ in made:
        if items.parent_select is not None:
            _refuse_zipped_unnests(items.parent_select)
    return lowered


def _expanded_value(node: exp.Expr) -> exp.Expr | None:
    """x when *node* is the translator's expansion of x into JSON[], else None."""
    if not (isinstance(node, exp.Cast) and node.to.this == exp.DType.ARRAY
            and [t.this for t in node.to.expressions] == [exp.DType.JSON] and isinstance(node.this, exp.Case)):
        return None
    case = node.this
    ifs = case.args.get("ifs") or []
    if not (isinstance(case.this, exp.JSONType) and [i.this for i in ifs] == [exp.Literal.string("ARRAY"), exp.Literal.string("OBJECT")]
            and isinstance(ifs[0].args["true"], exp.JSONExtract) and isinstance(ifs[1].args["true"], exp.Transform)
            and isinstance(case.args.get("default"), exp.JSONArray)):
        return None
    value = case.this.this
    if case.args["default"].expressions != [value]:
        return None
    return value


def _zip_item_index(select: exp.Select, items: exp.Expr, value: exp.Expr) -> None:
    """with_itemindex: the SELECT unnests x's items and `generate_series(0, <x's item count> - 1)`,
    which DuckDB zips. Both become elements of one `arrayJoin(arrayZip(items, 0..n-1))` (ClickHouse
    joins an arrayJoin written twice once)."""
    explodes = [node for projection in select.expressions for node in projection.find_all(exp.Explode)
                if node.parent_select is select]
    index = [node for node in explodes if _item_index_of(node.this, value)]
    if not index or not any(node.this is items for node in explodes):
        return
    zipped = parse_one("arrayJoin(arrayZip(__items, arrayMap(__kql_n -> toInt64(__kql_n), range(length(__items)))))",
                       read="clickhouse")
    joined = zipped.transform(lambda n: items.copy() if isinstance(n, exp.Column) and n.name == "__items" else n)
    for node in explodes:
        if node.this is items or (node.this.sql("clickhouse") == items.sql("clickhouse")):
            node.replace(exp.Anonymous(this="tupleElement", expressions=[joined.copy(), exp.Literal.number(1)]))
        elif node in index:
            node.replace(exp.Anonymous(this="tupleElement", expressions=[joined.copy(), exp.Literal.number(2)]))


def _item_index_of(series: exp.Expr, value: exp.Expr) -> bool:
    """Whether *series* is the translator's `generate_series(0, <value's item count> - 1)`."""
    if not isinstance(series, exp.GenerateSeries):
        return False
    x = value.sql("duckdb")
    expected = (f"GENERATE_SERIES(CAST(0 AS BIGINT), CASE JSON_TYPE({x}) WHEN 'ARRAY' THEN CAST(JSON_ARRAY_LENGTH({x}) AS BIGINT) "
                f"WHEN 'OBJECT' THEN CAST(JSON_ARRAY_LENGTH(JSON_KEYS({x})) AS BIGINT) ELSE CAST(1 AS BIGINT) END - 1)")
    return series.sql("duckdb") == expected


def _refuse_zipped_unnests(select: exp.Select) -> None:
    """Refuse a SELECT (one that expands a value) whose own projections unnest two different arrays."""
    unnested = {node.this.sql("clickhouse") for projection in select.expressions
                for node in projection.find_all(exp.Explode) if node.parent_select is select}
    if len(unnested) > 1:
        refuse("expanding a dynamic value next to another array (mv-expand of two columns)")


_ROW = "__kql_row"
_NUMBERED = parse_one("row_number() OVER (ORDER BY tuple(*))", read="clickhouse")


def stable_row_numbers(tree: exp.Expr) -> exp.Expr:
    """mv-apply numbers the input rows (`row_number() OVER () AS __kql_row`) and joins the applied
    rows back on that number, reading the numbered rows twice. DuckDB scans a table in one order;
    ClickHouse's CTEs are evaluated per reference and its parallel reads may order rows differently
    each time. Numbered in the order of the rows' own values, both reads agree (rows that tie are
    equal in every column, so either pairing joins the same values)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if (isinstance(node, exp.Alias) and node.alias == _ROW and isinstance(node.this, exp.Window)
                and isinstance(node.this.this, exp.RowNumber) and not node.this.args.get("partition_by")
                and not node.this.args.get("order")):
            return exp.alias_(_NUMBERED.copy(), _ROW, quoted=True)
        return node
    return tree.transform(swap, copy=False)
