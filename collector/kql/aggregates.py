"""Aggregates duckdb-kql 1.1 lacks, and the scalar functions that read what they build.

Registered in its aggregate table as functions.py registers minif/maxif, with Kusto's neutral
values for empty input (0 for the population spread, `[]`/`{}` for the collections) and its
default column names (`stdevp_x`, `list_x`, `set_x`, `bag_x`, `percentiles_x`, `tdigest_x`):

- `stdevp`, `variancep`: population standard deviation and variance.
- `make_list_if`, `make_set_if`, `make_bag_if`: as make_list/make_set/make_bag over the rows
  where the predicate holds. `make_bag` merges the property bags of the rows (when rows disagree
  on a key, one of their values is kept, as Kusto allows); anything but a bag is skipped.
- `percentiles_array(x, p1, p2, ...)` or `(x, dynamic([p1, ...]))`: the percentiles as one array.
- `tdigest(x)`, `tdigest_merge(d)` (alias `merge_tdigest`): see digests.py; `percentile_tdigest`
  reads one.
- `hash(x[, mod])`, `hash_xxhash64(x[, mod])`: xxHash64 of the value's string form (xxhash.py).
"""

from __future__ import annotations

import duckdb_kql.translate as _translate
from duckdb_kql import ir
from duckdb_kql.translate import functions as _registry

from . import digests
from .series_functions import HASH_UDF, UDF_NAME

_EMPTY_BAG = "'{{}}'::JSON"
_BAGS = "list(CAST(CAST({0} AS JSON) AS MAP(VARCHAR, JSON))) FILTER (WHERE json_type(CAST({0} AS JSON)) = 'OBJECT'{extra})"


def _bag_template(condition: str) -> str:
    bags = _BAGS.replace("{extra}", condition)
    return (f"coalesce(CAST(to_json(list_reduce({bags}, lambda __kql_a, __kql_b: map_concat(__kql_a, __kql_b))) "
            f"AS JSON), {_EMPTY_BAG})")


_MAKE_SET_IF = ("to_json(coalesce(list_distinct(flatten(list("
                "CASE WHEN json_type(TRY_CAST({0} AS JSON)) = 'ARRAY' "
                "THEN CAST(to_json({0}) AS JSON[]) ELSE [to_json({0})] END"
                ") FILTER (WHERE {0} IS NOT NULL AND ({1})))), []))")


class _PercentilesArray(_registry.AggregateSpec):
    """Variadic: each point a number, or one dynamic array of them."""

    def render(self, args: list[str]) -> str:
        if len(args) < 2:
            raise ValueError(f"{self.name}() takes (2, ...) argument(s), got {len(args)}")
        value, *points = args
        if len(points) == 1 and "JSON" in points[0].upper():
            fractions = f"list_transform(CAST(CAST({points[0]} AS JSON) AS DOUBLE[]), lambda __kql_p: __kql_p / 100.0)"
        else:
            fractions = "[" + ", ".join(f"CAST({p} AS DOUBLE) / 100.0" for p in points) + "]"
        return f"CAST(to_json(quantile_disc({value}, {fractions})) AS JSON)"


class _Digest(_registry.AggregateSpec):
    def render(self, args: list[str]) -> str:
        if len(args) != 1:
            raise ValueError(f"{self.name}() takes (1) argument(s), got {len(args)}")
        return digests.aggregate_sql(args[0])


_AGGREGATES = [
    _registry.AggregateSpec("stdevp", "coalesce(stddev_pop({0}), 0.0)", (1,)),
    _registry.AggregateSpec("variancep", "coalesce(var_pop({0}), 0.0)", (1,)),
    _registry.AggregateSpec("make_list_if", "coalesce(list({0}) FILTER (WHERE {0} IS NOT NULL AND ({1})), [])",
                            (2, 3), name_prefix="list"),
    _registry.AggregateSpec("make_set_if", _MAKE_SET_IF, (2, 3), name_prefix="set"),
    _registry.AggregateSpec("make_bag", _bag_template(""), (1, 2), name_prefix="bag"),
    _registry.AggregateSpec("make_bag_if", _bag_template(" AND ({1})"), (2, 3), name_prefix="bag"),
    _PercentilesArray("percentiles_array", "", (), name_prefix="percentiles"),
    _Digest("tdigest", "", (1,)),
    _registry.AggregateSpec(
        "tdigest_merge", f"{UDF_NAME}('tdigest_merge', CAST(to_json(list({{0}})) AS VARCHAR), NULL)", (1,)),
    _registry.AggregateSpec(
        "merge_tdigest", f"{UDF_NAME}('tdigest_merge', CAST(to_json(list({{0}})) AS VARCHAR), NULL)", (1,),
        name_prefix="tdigest_merge"),
]


def _render_percentile_tdigest(node) -> str | None:
    if len(node.args) not in (2, 3):
        return None
    digest, point = (_translate.render_expr(a) for a in node.args[:2])
    return (f"CAST({UDF_NAME}('percentile_tdigest', CAST({digest} AS VARCHAR), "
            f"CAST(json_array({point}) AS VARCHAR)) AS DOUBLE)")


def _render_hash(node) -> str | None:
    if len(node.args) not in (1, 2):
        return None
    value = node.args[0]
    text = (_translate.render_expr(value) if isinstance(value, ir.Literal) and isinstance(value.value, str)
            else _translate.render_kql_tostring(value))
    modulo = f"CAST({_translate.render_expr(node.args[1])} AS BIGINT)" if len(node.args) == 2 else "NULL"
    return f"{HASH_UDF}(CAST({text} AS VARCHAR), {modulo})"


def register() -> None:
    """Add the aggregates and scalar forms above; idempotent."""
    for aggregate in _AGGREGATES:
        _registry.AGGREGATE_FUNCTIONS.setdefault(aggregate.name, aggregate)
    _translate._SPECIAL_FORMS.update({"percentile_tdigest": _render_percentile_tdigest,
                                      "hash": _render_hash, "hash_xxhash64": _render_hash})


register()
