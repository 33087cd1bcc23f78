"""Scalar functions duckdb-kql 1.1 lacks, registered as its own are (see functions.py).

- `bin_at(value, size, fixed)`: `bin` with the bins aligned on *fixed* rather than the epoch
  (datetimes and timespans when *size* is a timespan literal or *fixed* a datetime; numbers else).
- `set_union`, `set_intersect`, `set_difference`: arrays of distinct values, in first-seen order.
- `bag_merge(b1, b2, ...)`: one bag; a key in several keeps the first bag's value.
- `bag_remove_keys(bag, keys)`: the bag without the top-level keys listed.
- `format_timespan(ts, format)`: .NET custom timespan formats (`d`, `h`/`hh`, `m`/`mm`,
  `s`/`ss`, `f`..`fffffff`, `F`.., quoted literals and separators), as the docs' examples.
- `datetime_part` returns `int` (the translator's answer is a long).
"""

from __future__ import annotations

import re

import duckdb_kql.translate as _translate
from duckdb_kql import ir

from .functions import _args, _fresh


def _is_temporal(node: ir.Expr) -> bool:
    return ((isinstance(node, ir.Literal) and node.kind == "timespan")
            or _translate._is_datetime_expr(node) or _translate._is_timespan_expr(node))


def _render_bin_at(node) -> str | None:
    if len(node.args) != 3:
        return None
    value, size, fixed = (_translate.render_expr(a) for a in node.args)
    if not (_is_temporal(node.args[1]) or _is_temporal(node.args[2])):
        return (f"(({fixed}) + floor((({value}) - ({fixed})) / ({size})) * ({size}))")
    if _translate._is_timespan_expr(node.args[0]):
        floored = f"floor((epoch({value}) - epoch({fixed})) / epoch({size})) * epoch({size})"
        return f"to_seconds(epoch({fixed}) + {floored})"
    # DuckDB's time_bucket with an origin is exactly this for day/hour/minute widths (no months
    # in a KQL timespan), and several times cheaper per row than the epoch arithmetic.
    return f"time_bucket({size}, CAST({value} AS TIMESTAMP), CAST({fixed} AS TIMESTAMP))"


def _json_list(sql: str) -> str:
    """A dynamic array as a DuckDB list of JSON values (null when it is not an array)."""
    return (f"(CASE WHEN json_type(CAST({sql} AS JSON)) = 'ARRAY' "
            f"THEN CAST(CAST({sql} AS JSON) AS JSON[]) END)")


def _distinct(sql: str, x: str, i: str) -> str:
    """The distinct items of list *sql*, in first-seen order."""
    return f"list_filter({sql}, lambda {x}, {i}: list_position({sql}, {x}) = {i})"


def _render_set(op: str):
    def render(node) -> str | None:
        if len(node.args) < 2 or (op != "union" and len(node.args) != 2):
            return None
        rendered = _args(node)
        lists = [_json_list(a) for a in rendered]
        x, i = _fresh("__kql_x", rendered), _fresh("__kql_i", rendered)
        if op == "union":
            combined = _distinct(f"flatten([{', '.join(lists)}])", x, i)
        else:
            keep = "" if op == "intersect" else "NOT "
            combined = f"list_filter({_distinct(lists[0], x, i)}, lambda {x}: {keep}list_contains({lists[1]}, {x}))"
        return f"CAST(to_json({combined}) AS JSON)"
    return render


def _bag_map(sql: str) -> str:
    """A dynamic bag as a MAP(VARCHAR, JSON); an empty map for anything that is not a bag."""
    return (f"(CASE WHEN json_type(CAST({sql} AS JSON)) = 'OBJECT' "
            f"THEN CAST(CAST({sql} AS JSON) AS MAP(VARCHAR, JSON)) ELSE MAP {{}}::MAP(VARCHAR, JSON) END)")


def _render_bag_merge(node) -> str | None:
    """Keys in first-seen order; a key in several bags keeps the first bag's value (docs)."""
    if len(node.args) < 2:
        return None
    rendered = _args(node)
    e, i = _fresh("__kql_e", rendered), _fresh("__kql_i", rendered)
    entries = f"flatten([{', '.join(f'map_entries({_bag_map(a)})' for a in rendered)}])"
    keys = f"list_transform({entries}, lambda {e}: {e}.key)"
    kept = f"list_filter({entries}, lambda {e}, {i}: list_position({keys}, {e}.key) = {i})"
    return f"CAST(to_json(map_from_entries({kept})) AS JSON)"


def _render_bag_remove_keys(node) -> str | None:
    if len(node.args) != 2:
        return None
    bag, keys = _args(node)
    e = _fresh("__kql_e", [bag, keys])
    listed = f"CAST(CAST({keys} AS JSON) AS VARCHAR[])"
    kept = f"list_filter(map_entries({_bag_map(bag)}), lambda {e}: NOT list_contains({listed}, {e}.key))"
    return (f"(CASE WHEN json_type(CAST({bag} AS JSON)) = 'OBJECT' THEN "
            f"CAST(to_json(map_from_entries({kept})) AS JSON) END)")


_ORIGINAL_DATETIME_PART = _translate._SPECIAL_FORMS.get("datetime_part")


def _render_datetime_part(node) -> str | None:
    """Kusto types `datetime_part` as `int`."""
    if _ORIGINAL_DATETIME_PART is None:
        return None
    rendered = _ORIGINAL_DATETIME_PART(node)
    return None if rendered is None else f"CAST({rendered} AS INTEGER)"


_TIMESPAN_TOKEN = re.compile(r"'[^']*'|\"[^\"]*\"|\\.|d+|h+|m+|s+|f+|F+|.", re.S)
_UNITS = {"d": (86_400_000_000, None), "h": (3_600_000_000, 24), "m": (60_000_000, 60), "s": (1_000_000, 60)}


def _render_format_timespan(node) -> str | None:
    """.NET custom timespan formats, the format a string literal (module doc)."""
    if len(node.args) != 2:
        return None
    fmt = node.args[1]
    if not (isinstance(fmt, ir.Literal) and isinstance(fmt.value, str)):
        return None
    micros = f"abs(CAST(round(epoch({_translate.render_expr(node.args[0])}) * 1e6) AS BIGINT))"
    pieces = [_timespan_piece(token, micros) for token in _TIMESPAN_TOKEN.findall(fmt.value)]
    return "concat(" + ", ".join(pieces or ["''"]) + ")" if pieces else "''"


def _timespan_piece(token: str, micros: str) -> str:
    letter = token[0]
    if letter in _UNITS:
        unit, modulo = _UNITS[letter]
        value = f"({micros} // {unit})" + (f" % {modulo}" if modulo else "")
        return f"lpad(CAST({value} AS VARCHAR), {len(token)}, '0')" if len(token) > 1 else f"CAST({value} AS VARCHAR)"
    if letter in "fF":
        digits = min(len(token), 7)
        ticks = f"lpad(CAST(({micros} % 1000000) * 10 AS VARCHAR), 7, '0')"
        cut = f"substring({ticks}, 1, {digits})"
        return cut if letter == "f" else f"rtrim({cut}, '0')"
    if token[:1] in "'\"" and len(token) >= 2:
        token = token[1:-1]
    elif token.startswith("\\"):
        token = token[1:]
    return "'" + token.replace("'", "''") + "'"


_SPECIAL_FORMS = {
    "bin_at": _render_bin_at, "set_union": _render_set("union"),
    "set_intersect": _render_set("intersect"), "set_difference": _render_set("difference"),
    "bag_merge": _render_bag_merge, "bag_remove_keys": _render_bag_remove_keys,
    "datetime_part": _render_datetime_part, "format_timespan": _render_format_timespan,
}


def register() -> None:
    """Install the renderings above in the translator; idempotent."""
    _translate._SPECIAL_FORMS.update(_SPECIAL_FORMS)


register()
