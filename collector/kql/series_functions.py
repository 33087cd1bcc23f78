"""Kusto's series and digest functions: one Python UDF, `kql_compute`, registered on the connection that runs
the query, and the translator renderings that call it.

`series_fir(s, dynamic([1, 1]), false)` renders as `kql_compute('series_fir', CAST(s AS VARCHAR),
json_array(dynamic([1, 1]), false))`: the name is ours (a literal), the series travels as its
JSON text and the options as one JSON array, so every function has one SQL signature. The
arithmetic is series_math.py's. A series is an array of numbers; nulls and anything else in it
are missing values. Not an array: null out, as Kusto answers.

The UDF computes, it reads nothing: no table, file or setting is reachable from it, so it keeps
the engine's read-only guarantee. It is registered (once per database; DuckDB shares a UDF among
the cursors of one database) when a query's SQL calls it (`ensure_registered`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import duckdb
import duckdb_kql.translate as _translate
import numpy as np
from duckdb.func import SPECIAL

from . import digests, xxhash
from . import series_math as sm

UDF_NAME = "kql_compute"
HASH_UDF = "kql_xxhash64"


def _numbers(items: list) -> np.ndarray:
    return np.array([float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else np.nan
                     for v in items], dtype=float)


def _cell(value: float, integral: bool) -> Any:
    if math.isnan(value) or math.isinf(value):
        return None
    return int(value) if integral and float(value).is_integer() else float(value)


def _array(values: np.ndarray, integral: bool = False) -> list:
    return [_cell(float(v), integral) for v in values]


def _missing(items: list, placeholder: Any) -> list:
    return [None if v is None or (placeholder is not None and v == placeholder) else v for v in items]


def _fill_const(items: list, constant: Any = 0, placeholder: Any = None) -> list:
    return [constant if v is None else v for v in _missing(items, placeholder)]


def _fill_forward(items: list, placeholder: Any = None) -> list:
    out, last = [], None
    for v in _missing(items, placeholder):
        last = v if v is not None else last
        out.append(last)
    return out


def _fill_backward(items: list, placeholder: Any = None) -> list:
    return _fill_forward(items[::-1], placeholder)[::-1]


def _fill_linear(items: list, placeholder: Any = None, fill_edges: bool = True, constant: Any = None) -> list:
    cleaned = _missing(items, placeholder)
    filled = sm.fill_linear(_numbers(cleaned), bool(fill_edges), constant)
    return _array(filled)


def _fir(items: list, taps: list, normalize: bool = True, center: bool = False) -> list:
    return _array(sm.fir(_numbers(items), _numbers(taps), bool(normalize), bool(center)))


def _outliers(items: list, kind: str = "ctukey", ignore: Any = None, low: float = 10.0,
              high: float = 90.0) -> list:
    return _array(sm.outliers(_numbers(_missing(items, ignore)), kind, low, high))


def _decompose(items: list, seasonality: int = -1, trend: str = "avg", test_points: int = 0,
               threshold: float = 0.6) -> dict:
    parts = sm.decompose(_numbers(items), int(seasonality), trend, int(test_points), threshold)
    return dict(zip(("baseline", "seasonal", "trend", "residual"), map(_array, parts), strict=True))


def _anomalies(items: list, threshold: float = 1.5, seasonality: int = -1, trend: str = "linefit",
               test_points: int = 0, method: str = "ctukey", season_threshold: float = 0.6) -> dict:
    flag, score, baseline = sm.anomalies(_numbers(items), threshold, int(seasonality), trend,
                                         int(test_points), method, season_threshold)
    return {"ad_flag": _array(flag, True), "ad_score": _array(score), "baseline": _array(baseline)}


FUNCTIONS: dict[str, Callable[..., Any]] = {
    "series_fill_const": _fill_const, "series_fill_forward": _fill_forward,
    "series_fill_backward": _fill_backward, "series_fill_linear": _fill_linear,
    "series_stats_dynamic": lambda items, ignore_nonfinite=False: sm.stats(_numbers(items)),
    "series_fir": _fir, "series_outliers": _outliers,
    "__kql_series_decompose": _decompose, "__kql_series_decompose_anomalies": _anomalies,
    "tdigest_merge": digests.merge, "percentile_tdigest": digests.percentile,
    "row_window_session": sm.session_starts,
}
"""Each series function: (the series' items, the options) -> its JSON-ready answer."""

_ARITIES = {"series_fill_const": (1, 3), "series_fill_forward": (1, 2), "series_fill_backward": (1, 2),
            "series_fill_linear": (1, 4), "series_stats_dynamic": (1, 2), "series_fir": (2, 4),
            "series_outliers": (1, 5), "__kql_series_decompose": (1, 5),
            "__kql_series_decompose_anomalies": (1, 7)}


def _udf(name: str | None, series: str | None, options: str | None) -> str | None:
    function = FUNCTIONS.get(name or "")
    if function is None or series is None:
        return None
    try:
        items = json.loads(series)
        args = json.loads(options) if options else []
    except ValueError:
        return None
    if not isinstance(items, list) and name in _ARITIES:
        return None
    return json.dumps(function(items, *args), separators=(",", ":"))


def uses_udfs(sql: str) -> bool:
    return UDF_NAME in sql or HASH_UDF in sql


def ensure_registered(con: duckdb.DuckDBPyConnection) -> None:
    """Make `kql_compute` and `kql_xxhash64` callable on *con*'s database (a no-op once they are).

    Registered through a fresh cursor: *con* may hold an unfinished result of its own, which
    DuckDB 2.0 refuses to work past; a UDF is the database's, whichever cursor registered it."""
    with con.cursor() as fresh:
        _register(fresh, UDF_NAME, _udf, ["VARCHAR", "VARCHAR", "VARCHAR"], "JSON")
        _register(fresh, HASH_UDF, xxhash.kusto_hash, ["VARCHAR", "BIGINT"], "BIGINT")


def _register(con: duckdb.DuckDBPyConnection, name: str, function: Callable[..., Any],
              parameters: list[str], returns: str) -> None:
    try:
        con.create_function(name, function, list(parameters), returns, null_handling=SPECIAL, side_effects=False)
    except (duckdb.CatalogException, duckdb.NotImplementedException):
        pass  # registered already, by this or another cursor of the same database


def _render(name: str):
    low, high = _ARITIES[name]

    def render(node) -> str | None:
        if not low <= len(node.args) <= high:
            counts = ", ".join(str(n) for n in range(low, high + 1))
            raise ValueError(f"{name}() takes ({counts}) argument(s), got {len(node.args)}")
        series, *options = (_translate.render_expr(a) for a in node.args)
        packed = f"CAST(json_array({', '.join(options)}) AS VARCHAR)" if options else "NULL"
        return f"{UDF_NAME}('{name}', CAST({series} AS VARCHAR), {packed})"
    return render


def register() -> None:
    """Install the renderings in the translator; idempotent."""
    for name in _ARITIES:
        _translate._SPECIAL_FORMS[name] = _render(name)


register()
