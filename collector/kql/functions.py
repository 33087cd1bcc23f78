"""Function mappings duckdb-kql 1.1 lacks, registered in its function tables at import.

This is the one place we reach into the translator's internals (its `SCALAR_FUNCTIONS`,
`AGGREGATE_FUNCTIONS` and `_SPECIAL_FORMS` registries), because these functions are a SQL
template each and the registry is exactly the mechanism the translator uses for its own. A test pins the registries'
shape, so an upgrade that moves them fails loudly instead of silently dropping the bridges.
"""

from __future__ import annotations

import duckdb_kql.translate as _translate
from duckdb_kql.translate import functions as _registry

_AGGREGATES = [
    # min/max over the rows where the predicate holds; named `minif_x`/`maxif_x` like Kusto.
    _registry.AggregateSpec("minif", "min({0}) FILTER (WHERE {1})", (2,)),
    _registry.AggregateSpec("maxif", "max({0}) FILTER (WHERE {1})", (2,)),
]

_SCALARS = [
    # The keys of a property bag, as a dynamic array; null for anything that is not a bag.
    _registry.FunctionSpec(
        "bag_keys", "template",
        "CASE WHEN json_type(CAST({0} AS JSON)) = 'OBJECT' "
        "THEN to_json(json_keys(CAST({0} AS JSON))) END",
        (1,),
    ),
]


def _render_round(node) -> str:
    """Kusto rounds as .NET does: scale, round half away from zero, scale back. So `round(2.15, 1)`
    is 2.2 (docs), where DuckDB's exact rounding of the double 2.1499… gives 2.1; and
    `round(1.005, 2)` stays 1.0 either way, as the translator measured on the emulator."""
    if len(node.args) != 2:
        return _translate._render_round(node)
    value = f"CAST({_translate.render_expr(node.args[0])} AS DOUBLE)"
    scale = f"pow(CAST(10 AS DOUBLE), {_translate.render_expr(node.args[1])})"
    return f"(round({value} * {scale}) / {scale})"


def _args(node) -> list[str]:
    """The call's arguments rendered as the translator renders them (strings coerced where Kusto
    coerces them), so a bridge differs from the translator's own form only in its template."""
    return [_translate._render_arg(node.name, i, a) for i, a in enumerate(node.args)]


def _fresh(name: str, rendered: list[str]) -> str:
    """A lambda parameter no rendered argument mentions, so it cannot capture a column."""
    while any(name in r for r in rendered):
        name += "_"
    return name


def _render_split(node) -> str | None:
    """`split(s, d, i)`: the array holding the i-th piece (zero-based), or `[]` if there is none.
    Two arguments are the translator's."""
    if len(node.args) != 3:
        return None
    s, d, i = _args(node)
    parts = f"str_split({s}, {d})"
    return (f"(CASE WHEN ({i}) >= 0 AND ({i}) < len({parts}) THEN [{parts}[({i}) + 1]] "
            f"ELSE CAST([] AS VARCHAR[]) END)")


def _render_indexof(node) -> str | None:
    """`indexof(s, m, start[, length[, occurrence]])`, as the docs' examples answer.

    A negative start counts from the end (idx5: `indexof("abcdefg", "cde", -5)` is 2). Null when
    occurrence < 0 or length < -1. The n-th occurrence is searched as .NET's IndexOf(m, from,
    length) repeated from one past the previous match, each time over `length` characters
    (idx8: `indexof("abcdefgabcdefg", "cde", 1, 10, 2)` is 9, though 9 + 3 > 1 + 10). So it is
    the n-th of all matches at or after start, provided each one ends within `length` of the
    position its search began at.
    """
    if len(node.args) not in (3, 4, 5):
        return None
    rendered = _args(node)
    s, m, start = rendered[:3]
    length = rendered[3] if len(rendered) > 3 else "-1"
    occurrence = rendered[4] if len(rendered) > 4 else "1"
    p, k = _fresh("__kql_p", rendered), _fresh("__kql_k", rendered)
    s, m = f"CAST({s} AS VARCHAR)", f"CAST({m} AS VARCHAR)"
    begin = f"(CASE WHEN ({start}) < 0 THEN greatest(length({s}) + ({start}), 0) ELSE ({start}) END)"
    found = (f"list_filter(range({begin}, length({s}) - length({m}) + 1), "
             f"lambda {p}: substring({s}, {p} + 1, length({m})) = {m})")
    from_ = f"(CASE WHEN {k} = 1 THEN {begin} ELSE {found}[{k} - 1] + 1 END)"
    late = (f"len(list_filter(range(1, ({occurrence}) + 1), "
            f"lambda {k}: {found}[{k}] + length({m}) > {from_} + ({length})))")
    return (f"(CASE WHEN ({occurrence}) < 0 OR ({length}) < -1 THEN NULL "
            f"WHEN ({occurrence}) = 0 OR len({found}) < ({occurrence}) THEN CAST(-1 AS BIGINT) "
            f"WHEN ({length}) = -1 OR {late} = 0 THEN CAST({found}[{occurrence}] AS BIGINT) "
            f"ELSE CAST(-1 AS BIGINT) END)")


_DOUBLE_TEXT = " WHEN 'nan' THEN 'NaN' WHEN '-nan' THEN 'NaN' ELSE CAST({0} AS VARCHAR) END"


def _render_tostring(node) -> str | None:
    """`tostring(real)` as Kusto writes it: a whole real without a fraction (`tostring(-2.0)` is
    `-2`, `tostring(real(1))` is `1`), where DuckDB writes `-2.0`; other reals keep the shortest
    text that reads back as the same double (`1.5`, `0.1`), as in both. Only the translator's
    DOUBLE branch changes (tests/kql/cases/store_parity.kql fails if an upgrade moves it); its
    outer CAST keeps it typed VARCHAR for sqlglot, which the ClickHouse lowering's typeof folding
    needs (evaluate narrow asks typeof() of each tostring())."""
    sql = _translate._render_tostring(node)
    if sql is None or _translate._is_dynamic_expr(node.args[0]) or _translate._is_datetime_expr(node.args[0]):
        return sql  # no DOUBLE branch
    rendered = _translate.render_expr(node.args[0])
    double = _DOUBLE_TEXT.format(rendered)
    whole = _patched(double, f"ELSE CAST({rendered} AS VARCHAR)",
                     f"ELSE CAST(regexp_replace(CAST({rendered} AS VARCHAR), '\\.0$', '') AS VARCHAR)")
    return _patched(sql, double, whole)


def _render_datetime_add(node) -> str:
    """`datetime_add(part, amount, t)` with a real amount adds its integer part, as Kusto converts a
    real to an integer (toint's docs: a decimal value is truncated): the translator's `CAST(amount
    AS BIGINT)` rounds in DuckDB (1.5 is 2) where ClickHouse's truncates (1), so the amount is
    truncated first (`trunc` keeps a long as it is)."""
    sql = _translate._render_datetime_add(node)
    amount = _translate.render_expr(node.args[1])
    return _patched(sql, f"(CAST({amount} AS BIGINT))", f"(CAST(trunc({amount}) AS BIGINT))")


def _patched(sql: str, fragment: str, replacement: str) -> str:
    """`sql` with the translator's `fragment` replaced once; an error, not a silently unpatched
    query, if a duckdb-kql upgrade renders it otherwise."""
    if fragment not in sql:
        raise RuntimeError(f"duckdb-kql no longer renders {fragment!r}; collector/kql/functions.py must follow it")
    return sql.replace(fragment, replacement, 1)


# Renderings we replace because the translator's answer differs from Kusto's documented one, or
# that it lacks (the extra arguments of split and indexof).
_SPECIAL_FORMS = {"round": _render_round, "split": _render_split, "indexof": _render_indexof,
                  "tostring": _render_tostring, "datetime_add": _render_datetime_add}


def register() -> None:
    """Add the bridges; idempotent. Only `_SPECIAL_FORMS` replace what the translator has."""
    for aggregate in _AGGREGATES:
        _registry.AGGREGATE_FUNCTIONS.setdefault(aggregate.name, aggregate)
    for scalar in _SCALARS:
        _registry.SCALAR_FUNCTIONS.setdefault(scalar.name, scalar)
    _translate._SPECIAL_FORMS.update(_SPECIAL_FORMS)


register()
