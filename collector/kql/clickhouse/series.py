"""`make-series` on ClickHouse: the translator builds each series with DuckDB's ordered aggregate
`list(x ORDER BY i)`, which ClickHouse lacks."""

from __future__ import annotations

from sqlglot import exp, parse_one

from .refusals import refuse
from .udfs import float_json


def ordered_lists(tree: exp.Expr) -> exp.Expr:
    """`list(x ORDER BY i)` (one key, ascending) becomes `arrayMap(p -> p.2, arraySort(p -> p.1,
    groupArray(tuple(i, x))))`: the pairs are collected, sorted by the key and the values kept, so
    a NULL value keeps its place (groupArray skips NULLs, but not a tuple holding one)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.ArrayAgg) and isinstance(node.this, exp.Order)):
            return node
        keys = node.this.expressions
        if len(keys) != 1 or keys[0].args.get("desc"):
            refuse("an ordered list over more than one key or descending")
        lowered = parse_one("arrayMap(p -> p.2, arraySort(p -> p.1, groupArray(tuple(__kql_key, __kql_value))))",
                            read="clickhouse")
        for column in list(lowered.find_all(exp.Column)):
            if column.name == "__kql_key":
                column.replace(keys[0].this.copy())
            elif column.name == "__kql_value":
                column.replace(node.this.this.copy())
        return lowered
    return tree.transform(swap, copy=False)


def bin_numbers(tree: exp.Expr) -> exp.Expr:
    """The series' bin numbers are DuckDB's `unnest(range(0, n))` in a select list: one row per
    number, end excluded. ClickHouse's `arrayJoin(range(0, n))` is the same rows (its
    generate_series is a table function, which sqlglot's spelling would need in FROM)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Explode) and isinstance(node.this, exp.GenerateSeries)
                and node.this.args.get("is_end_exclusive") and node.this.args.get("step") is None):
            return node
        series = node.this
        bounds = [exp.Anonymous(this="toInt64", expressions=[series.args[k].copy()]) for k in ("start", "end")]
        return exp.Anonymous(this="arrayJoin", expressions=[exp.Anonymous(this="range", expressions=bounds)])
    return tree.transform(swap, copy=False)


def series_json(tree: exp.Expr) -> exp.Expr:
    """A series leaves as JSON text: DuckDB's `to_json(list)` is ClickHouse's `toJSONString`
    (numbers unquoted, strings quoted, NULL as null, in both), except that DuckDB writes a whole
    real with its `.0` (`100.0`, which stays a real in the answer) and ClickHouse as `100`: a
    series (an ordered list, lowered above) is written element by element, reals through
    udfs.float_json, everything else through toJSONString."""
    def swap(node: exp.Expr) -> exp.Expr:
        if isinstance(node, exp.Anonymous) and node.name.lower() == "to_json" and len(node.expressions) == 1:
            if isinstance(node.expressions[0], exp.Transform):
                return _elementwise_json(node.expressions[0])
            return exp.Anonymous(this="toJSONString", expressions=node.expressions)
        return node
    return tree.transform(swap, copy=False)


def _elementwise_json(series: exp.Expr) -> exp.Expr:
    real = float_json("toFloat64OrNull(toString(__kql_e))")
    lowered = parse_one(f"concat('[', arrayStringConcat(arrayMap(__kql_e -> if(toTypeName(__kql_e) LIKE '%Float%', "
                        f"{real}, ifNull(toJSONString(__kql_e), 'null')), __kql_series), ','), ']')", read="clickhouse")
    for column in list(lowered.find_all(exp.Column)):
        if column.name == "__kql_series":
            column.replace(series)
    return lowered
