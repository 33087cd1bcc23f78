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
    """`CAST('<JSON text>' AS JSON)` becomes the text itself."""
    def swap(node: exp.Expr) -> exp.Expr:
        if (isinstance(node, (exp.Cast, exp.TryCast)) and node.to.this == exp.DType.JSON
                and isinstance(node.this, exp.Literal) and node.this.is_string and _is_json(node.this.this)):
            return node.this
        return node
    return tree.transform(swap, copy=False)


def _is_json(text: str) -> bool:
    try:
        json.loads(text, parse_constant=_no_constants)
    except ValueError:
        return False
    return True


def _no_constants(name: str) -> None:
    raise ValueError(f"{name} is not JSON")
