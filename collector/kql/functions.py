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


# Renderings we replace because the translator's answer differs from Kusto's documented one.
_SPECIAL_FORMS = {"round": _render_round}


def register() -> None:
    """Add the bridges; idempotent. Only `_SPECIAL_FORMS` replace what the translator has."""
    for spec in _AGGREGATES:
        _registry.AGGREGATE_FUNCTIONS.setdefault(spec.name, spec)
    for spec in _SCALARS:
        _registry.SCALAR_FUNCTIONS.setdefault(spec.name, spec)
    _translate._SPECIAL_FORMS.update(_SPECIAL_FORMS)


register()
