"""Dynamic values built in the query, on ClickHouse: JSON text, as the store's dynamic columns are
(jsontext.py).

- `pack`/`bag_pack`/`pack_array` are DuckDB's `json_object(k1, v1, ...)` and `json_array(v1, ...)`
  over values the translator already wrote as JSON (`to_json(x)`, which sqlglot lowers to
  `toJSONString`). ClickHouse has neither function, and the text is simple to build:
  `concat('{', toJSONString(k1), ':', ifNull(v1, 'null'), ',', ..., '}')` and
  `concat('[', ifNull(v1, 'null'), ',', ..., ']')` (a SQL NULL is JSON's null in DuckDB's).
  Spacing and escaping may differ from DuckDB's text (`\\/`); the query API answers arrays and
  objects re-serialized compactly (results._json_dynamic), so the answers are the same.
"""

from __future__ import annotations

from sqlglot import exp


def built_json(tree: exp.Expr) -> exp.Expr:
    """`json_object`/`json_array` over JSON values as the JSON text they build (see the module doc)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.JSONObject) and _plain(node):
            pairs = [node_part for kv in node.expressions
                     for node_part in (exp.func("toJSONString", kv.this.copy()), exp.Literal.string(":"), _json(kv.expression))]
            return _joined("{", pairs, "}", step=3)
        if isinstance(node, exp.JSONArray) and _plain(node):
            return _joined("[", [_json(v) for v in node.expressions], "]", step=1)
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
