"""Rounding a real on ClickHouse as on DuckDB.

`round(x)` (and `round(x, n)`, which functions.py renders as `round(x * 10^n) / 10^n`) is DuckDB's
`round(DOUBLE)`: half away from zero, as .NET's rounding that Kusto follows (`round(10.5)` is 11,
`round(-2.5)` is -3). ClickHouse's `round` of a Float64 rounds half to even (10, -2). A tie is
exactly a fraction of ±0.5, and `x - trunc(x)` is exact for every double, so the tie is found
without error and moved away from zero; any other value rounds the same in both. It runs before
the rules that write ClickHouse's own `round` (timespans.py, rules.epoch_seconds), which mean
ClickHouse's rounding, as DuckDB's microsecond rounding there is.
"""

from __future__ import annotations

from sqlglot import exp, parse_one

_VALUE = "__kql_r"
_HALF_AWAY = parse_one(f"if(abs({_VALUE} - trunc({_VALUE})) = 0.5, trunc({_VALUE}) + sign({_VALUE}), round({_VALUE}))",
                       read="clickhouse")


def half_away_rounding(tree: exp.Expr) -> exp.Expr:
    """Every `round(x)` without a precision as the half-away-from-zero rounding (module doc)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not isinstance(node, exp.Round) or node.args.get("decimals") is not None:
            return node
        value = node.this.transform(swap)  # a round inside x too: transform skips a replaced subtree
        rounded = _HALF_AWAY.copy()
        for column in list(rounded.find_all(exp.Column)):
            if column.name == _VALUE:
                column.replace(value.copy())
        return rounded
    return tree.transform(swap, copy=False)
