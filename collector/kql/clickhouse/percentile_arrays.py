"""`percentiles_array(x, ...)` on ClickHouse: the translator's `CAST(to_json(quantile_disc(x,
levels)) AS JSON)`, a JSON array of nearest-rank picks, written as its JSON text.

The picks are rules.nearest_rank_percentiles' (the value at 1-based rank ceil(n * p) of the sorted
values), one per level, with `arrayMap` over the levels: a list literal or a list computed from a
dynamic array (`percentiles_array(x, dynamic([25, 75]))`, which that rule does not lower). The text
is built item by item as DuckDB's `to_json` writes it, because the query API keeps a real's `.0`:
a whole real is `<integer>.0` (ClickHouse's `toJSONString` writes `1`), any other real
`toJSONString`'s shortest form (as DuckDB's), a whole number `toString`. x's type is read by
binding the SELECT's source on the empty DuckDB (shapes.py); a real of 1e15 or more (written
differently by the two engines) is refused when the query runs, and an x of any other type keeps
DuckDB's SQL for the other rules.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

from .shapes import source_columns

_WHOLE = {"BIGINT", "INTEGER", "SMALLINT", "TINYINT", "UBIGINT", "UINTEGER", "USMALLINT", "UTINYINT"}
_REAL = {"DOUBLE", "FLOAT"}
_PICKS = ("if(count(__x) = 0, NULL, concat('[', arrayStringConcat(arrayMap(__kql_q -> __fmt(arrayElement("
          "arraySort(groupArray(__x)), greatest(toUInt64(ceil(__rank)), 1))), __levels), ','), ']'))")
_REAL_TEXT = ("if(isFinite(__kql_v) AND __kql_v = floor(__kql_v) AND throwIf(abs(__kql_v) >= 1e15, 'kql-unsupported: "
              "percentiles_array of a real of 1e15 or more is not supported on the clickhouse store') = 0, "
              "concat(toString(toInt64(__kql_v)), '.0'), toJSONString(__kql_v))")


def percentile_arrays(tree: exp.Expr) -> exp.Expr:
    """`CAST(to_json(quantile_disc(x, levels)) AS JSON)` of a number column x as its JSON text."""
    found = []
    for node in tree.find_all(exp.Cast):
        picked = _quantiles(node)
        if picked is not None:
            kind = (source_columns(node.parent_select) or {}).get(picked[0].name)
            if kind in _WHOLE or kind in _REAL:
                found.append((node, *picked, kind))
    for node, value, levels, kind in found:
        node.replace(_picks(value, levels, kind))
    return tree


def _quantiles(node: exp.Cast) -> tuple[exp.Column, exp.Expr] | None:
    """(x, levels) when *node* is `CAST(to_json(quantile_disc(x, levels)) AS JSON)` over a list of levels."""
    inner = node.this
    if not (node.to.this == exp.DType.JSON and isinstance(inner, exp.Anonymous) and inner.name.lower() == "to_json"
            and len(inner.expressions) == 1):
        return None
    quantile = inner.expressions[0]
    if isinstance(quantile, exp.PercentileDisc):
        value, levels = quantile.this, quantile.expression
    elif isinstance(quantile, exp.Anonymous) and quantile.name.lower() == "quantile_disc" and len(quantile.expressions) == 2:
        value, levels = quantile.expressions
    else:
        return None
    if not isinstance(value, exp.Column) or not isinstance(levels, (exp.Array, exp.Transform)):
        return None
    return value, levels


def level_sql(q: exp.Expr) -> str:
    """A level to multiply a count by: the translator's `p / 100.0` unparenthesized, so that n * p is
    divided (DuckDB's pick; n * 0.07 over 100 values is 7.000000000000001, rank 8 not 7)."""
    return q.sql("clickhouse") if isinstance(q, exp.Div) else f"({q.sql('clickhouse')})"


def _percents(levels: exp.Expr) -> exp.Array | None:
    """The levels as percents when each is the translator's `p / 100.0` (a list literal)."""
    if not isinstance(levels, exp.Array):
        return None
    percents = [level.this for level in levels.expressions
                if isinstance(level, exp.Div) and isinstance(level.expression, exp.Literal)
                and level.expression.this in ("100.0", "100")]
    return exp.Array(expressions=percents) if len(percents) == len(levels.expressions) else None


def _picks(value: exp.Column, levels: exp.Expr, kind: str) -> exp.Expr:
    """The picks' JSON text. The rank is ceil(n * p / 100.0) where the levels are percents, as
    DuckDB's pick comes out (and the scalar percentile's): ceil(n * 0.07), the level divided
    first, is 8 over 1..100 (7.000000000000001), DuckDB's pick is the 7th."""
    percents = _percents(levels)
    rank = "count(__x) * __kql_q / 100.0" if percents is not None else "count(__x) * __kql_q"
    text = parse_one(_PICKS.replace("__rank", rank), read="clickhouse")
    levels = percents if percents is not None else levels
    formatted = parse_one(_REAL_TEXT if kind in _REAL else "toString(__kql_v)", read="clickhouse")

    def fill(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Column) and node.name == "__x":
            return value.copy()
        if isinstance(node, exp.Column) and node.name == "__levels":
            return levels.copy()
        if isinstance(node, exp.Anonymous) and node.name == "__fmt":
            pick = node.expressions[0].transform(fill)
            return formatted.copy().transform(lambda n: pick.copy() if isinstance(n, exp.Column) and n.name == "__kql_v" else n)
        return node
    return text.transform(fill)
