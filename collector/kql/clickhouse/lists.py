"""DuckDB lists built inside an expression, as ClickHouse arrays.

indexof() with an occurrence is the translator's `list_filter(range(s, e), lambda p: ...)` (the
positions where the needle starts) read with `len()` and `[k]`: DuckDB's `range(a, b)` is a list
of integers from a up to b excluded, empty when a >= b, as ClickHouse's `range(a, b)` over Int64
(sqlglot writes GENERATE_SERIES, which ClickHouse only has as a table function); `len()` of the
filtered list is `length` (sqlglot writes CHAR_LENGTH, a string's). Both engines index lists from
1; the translator guards every read to stay inside the list. The candidate positions count
characters (DuckDB's `length` and `substring`), so the `substring` the filter compares is
ClickHouse's `substringUTF8` (its SUBSTRING counts bytes).
"""

from __future__ import annotations

from sqlglot import exp


def list_ranges(tree: exp.Expr) -> exp.Expr:
    """`range(a, b)` inside an expression, and `len()` of a list_filter, as ClickHouse's."""
    def swap(node: exp.Expr) -> exp.Expr:
        if (isinstance(node, exp.GenerateSeries) and node.args.get("is_end_exclusive")
                and node.args.get("step") is None and not isinstance(node.parent, (exp.Explode, exp.Table))):
            bounds = [exp.Anonymous(this="toInt64", expressions=[node.args[k].transform(swap)]) for k in ("start", "end")]
            return exp.Anonymous(this="range", expressions=bounds)
        if isinstance(node, exp.Length) and isinstance(node.this, exp.ArrayFilter):
            return exp.Anonymous(this="length", expressions=[node.this.transform(swap)])
        if isinstance(node, exp.ArrayFilter) and isinstance(node.this, exp.GenerateSeries):
            for cut in list(node.expression.find_all(exp.Substring)):
                cut.replace(exp.Anonymous(this="substringUTF8", expressions=[
                    cut.this, cut.args["start"], *([cut.args["length"]] if cut.args.get("length") else [])]))
        return node
    return tree.transform(swap, copy=False)
