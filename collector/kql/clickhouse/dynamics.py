"""Dynamic values built in the query, on ClickHouse: JSON text, as the store's dynamic columns are
(jsontext.py).

- `pack`/`bag_pack`/`pack_array` are DuckDB's `json_object(k1, v1, ...)` and `json_array(v1, ...)`
  over values the translator already wrote as JSON (`to_json(x)`, which sqlglot lowers to
  `toJSONString`). ClickHouse has neither function, and the text is simple to build:
  `concat('{', toJSONString(k1), ':', ifNull(v1, 'null'), ',', ..., '}')` and
  `concat('[', ifNull(v1, 'null'), ',', ..., ']')` (a SQL NULL is JSON's null in DuckDB's).
  Spacing and escaping may differ from DuckDB's text (`\\/`); the query API answers arrays and
  objects re-serialized compactly (results._json_dynamic), so the answers are the same.
- `make_set(v)` is `to_json(coalesce(list_distinct(flatten(list(CASE WHEN json_type(TRY_CAST(v
  AS JSON)) = 'ARRAY' THEN CAST(to_json(v) AS JSON[]) ELSE [to_json(v)] END))), []))`: each row's
  items as JSON texts, the distinct ones as a JSON array. What `to_json(v)` writes depends on v's
  type, which the lowering reads by binding the SELECT's source on the empty DuckDB (shapes.py):
  a dynamic v (JSON) is its own text, an array's items its raw items; a whole number or a bool is
  `toJSONString(v)`; a string is its quoted text, and a string holding a JSON array (which DuckDB
  cannot cast, an error) is refused when the query runs. Other types (reals, datetimes: their
  JSON text differs) keep DuckDB's SQL, which ClickHouse refuses. The array is built with
  `arrayStringConcat`. A set's items come in first-seen order (`arrayDistinct`), DuckDB's in hash
  order: Kusto leaves a set's order unspecified.
- A column holding a DuckDB list (`make_list`'s, typed `T[]` by the same binding) is an Array in
  ClickHouse: `json_type(l)` of it is 'ARRAY' and `json_array_length(l)` its `length`.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

from .shapes import source_columns

_WHOLE = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT", "BOOLEAN"}
_JSON_ITEMS = "if(JSONType(ifNull(__v, 'null')) = 'Array', JSONExtractArrayRaw(ifNull(__v, '')), [ifNull(__v, 'null')])"
_STRING_ITEM = ("[if(throwIf(JSONType(ifNull(__v, '')) = 'Array', 'kql-unsupported: make_set of a string "
                "holding a JSON array is not supported on the clickhouse store') = 0, toJSONString(__v), '')]")


def built_json(tree: exp.Expr) -> exp.Expr:
    """`json_object`/`json_array` over JSON values as the JSON text they build (see the module doc)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.JSONObject) and _plain(node):
            pairs = [node_part for kv in node.expressions
                     for node_part in (exp.func("toJSONString", kv.this.copy()), exp.Literal.string(":"),
                                       _json(kv.expression.transform(swap)))]
            return _joined("{", pairs, "}", step=3)
        if isinstance(node, exp.JSONArray) and _plain(node):
            return _joined("[", [_json(v.transform(swap)) for v in node.expressions], "]", step=1)  # nested ones too
        return node
    return tree.transform(swap, copy=False)


def _plain(node: exp.Expr) -> bool:
    """Only values (no NULL ON NULL, RETURNING, ... clauses), keys plain expressions."""
    if any(v for k, v in node.args.items() if k != "expressions" and v not in (None, False)):
        return False
    if isinstance(node, exp.JSONObject):
        return all(isinstance(kv, exp.JSONKeyValue) for kv in node.expressions)
    return True


def _json(value: exp.Expr) -> exp.Expr:
    return exp.func("ifNull", value.copy(), exp.Literal.string("null"))


def _joined(opening: str, parts: list[exp.Expr], closing: str, step: int) -> exp.Expr:
    """concat(opening, parts with ',' between each *step* of them, closing)."""
    pieces: list[exp.Expr] = [exp.Literal.string(opening)]
    for i in range(0, len(parts), step):
        if i:
            pieces.append(exp.Literal.string(","))
        pieces.extend(parts[i:i + step])
    pieces.append(exp.Literal.string(closing))
    return exp.Anonymous(this="concat", expressions=pieces)


def made_sets(tree: exp.Expr) -> exp.Expr:
    """`make_set(v)`'s items and JSON array for a v of a known type (see the module doc)."""
    found = [(node, item, source_columns(node.parent_select)) for node in tree.find_all(exp.Anonymous)
             if (item := _set_item(node)) is not None]
    for node, (case, value), columns in found:
        kind = (columns or {}).get(value.name)
        template = (_JSON_ITEMS if kind == "JSON" else _STRING_ITEM if kind == "VARCHAR"
                    else "[toJSONString(__v)]" if kind in _WHOLE else None)
        if template is None:
            continue
        case.replace(parse_one(template, read="clickhouse").transform(
            lambda n, v=value: v.copy() if isinstance(n, exp.Column) and n.name == "__v" else n))
        node.replace(exp.Anonymous(this="concat", expressions=[
            exp.Literal.string("["), exp.Anonymous(this="arrayStringConcat", expressions=[node.expressions[0], exp.Literal.string(",")]),
            exp.Literal.string("]")]))
    return tree


def _set_item(node: exp.Anonymous) -> tuple[exp.Case, exp.Column] | None:
    """(the per-row CASE, v) when *node* is the translator's `make_set(v)`, else None."""
    if not (node.name.lower() == "to_json" and len(node.expressions) == 1 and isinstance(node.expressions[0], exp.Coalesce)):
        return None
    distinct = node.expressions[0].this
    flat = distinct.this if isinstance(distinct, exp.ArrayDistinct) else None
    aggregate = flat.this if isinstance(flat, exp.Flatten) else None
    if isinstance(aggregate, exp.Filter):
        aggregate = aggregate.this
    case = aggregate.this if isinstance(aggregate, exp.ArrayAgg) else None
    if not isinstance(case, exp.Case) or len(case.args.get("ifs") or []) != 1:
        return None
    value = case.find(exp.Column)
    if value is None:
        return None
    expected = (f"CASE WHEN JSON_TYPE(TRY_CAST({value.sql('duckdb')} AS JSON)) = 'ARRAY' THEN CAST(TO_JSON({value.sql('duckdb')}) "
                f"AS JSON[]) ELSE [TO_JSON({value.sql('duckdb')})] END")
    if case.sql("duckdb").upper() != expected.upper():
        return None
    return case, value


def list_columns(tree: exp.Expr) -> exp.Expr:
    """`json_type(l)`/`json_array_length(l)` of a DuckDB list column as ClickHouse's Array (see the module doc)."""
    found = []
    for node in tree.find_all(exp.JSONType, exp.Anonymous):
        is_length = isinstance(node, exp.Anonymous) and node.name.lower() == "json_array_length" and len(node.expressions) == 1
        if not (is_length or (isinstance(node, exp.JSONType) and not node.expression)):
            continue
        column = node.expressions[0] if is_length else node.this
        if isinstance(column, exp.Column) and str((source_columns(node.parent_select) or {}).get(column.name, "")).endswith("[]"):
            found.append((node, column, is_length))
    for node, column, is_length in found:
        node.replace(exp.Anonymous(this="length", expressions=[column.copy()]) if is_length else exp.Literal.string("ARRAY"))
    return tree
