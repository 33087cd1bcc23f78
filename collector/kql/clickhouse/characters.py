"""Strings count characters, as on DuckDB: ClickHouse's SUBSTRING, POSITION, REVERSE, LEFT, RIGHT,
UPPER and LOWER work on bytes (UPPER/LOWER on ASCII letters only), so `substring("äbc", 1)`,
`indexof("äbc", "b")` and `toupper("ä")` would answer differently for any non-ASCII text. Each
becomes its `...UTF8` twin, which counts and cases characters; for ASCII text the two agree.
"""

from __future__ import annotations

from sqlglot import exp

_TWINS: dict[type[exp.Expr], tuple[str, tuple[str, ...]]] = {
    exp.Substring: ("substringUTF8", ("this", "start", "length")),
    exp.StrPosition: ("positionUTF8", ("this", "substr", "position")),
    exp.Reverse: ("reverseUTF8", ("this",)),
    exp.Left: ("leftUTF8", ("this", "expression")),
    exp.Right: ("rightUTF8", ("this", "expression")),
    exp.Upper: ("upperUTF8", ("this",)),
    exp.Lower: ("lowerUTF8", ("this",)),
}


def character_strings(tree: exp.Expr) -> exp.Expr:
    """The byte-counting string functions as their character-counting `...UTF8` twins."""
    def swap(node: exp.Expr) -> exp.Expr:
        twin = _TWINS.get(type(node))
        if twin is None:
            return node
        name, keys = twin
        return exp.Anonymous(this=name, expressions=[node.args[k] for k in keys if node.args.get(k) is not None])
    return tree.transform(swap, copy=False)
