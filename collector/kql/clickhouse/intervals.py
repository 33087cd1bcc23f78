"""DuckDB's clock-form interval literal (`INTERVAL '00:00:01.5'`, what the translator writes for
`time(00:00:01.5)` under format_timespan) as a count of microseconds, the unit the other rules
(rules.interval_microseconds) read: ClickHouse has no interval of that form.
"""

from __future__ import annotations

import re

from sqlglot import exp

_CLOCK = re.compile(r"^(-?)(\d+):(\d{2}):(\d{2})(\.\d{1,6})?$")


def clock_intervals(tree: exp.Expr) -> exp.Expr:
    """`INTERVAL '[-]hh:mm:ss[.ffffff]'` becomes `INTERVAL 'N' MICROSECOND` (the same length)."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Interval) and node.args.get("unit") is None
                and isinstance(node.this, exp.Literal) and node.this.is_string):
            return node
        found = _CLOCK.match(node.this.this)
        if found is None:
            return node
        sign, hours, minutes, seconds, fraction = found.groups()
        micros = ((int(hours) * 60 + int(minutes)) * 60 + int(seconds)) * 1_000_000
        micros += round(float(fraction or "0") * 1_000_000)
        return exp.Interval(this=exp.Literal.string(f"{sign}{micros}"), unit=exp.var("MICROSECOND"))
    return tree.transform(swap, copy=False)
