"""series_decompose and series_decompose_anomalies on ClickHouse, step for step as series_math.py.

On DuckDB both are the `kql_compute` UDF (`__kql_series_decompose`,
`__kql_series_decompose_anomalies`) over the series' JSON text. Here they are ClickHouse array
expressions over the same text (udfs.py's tokens), in series_math's order:

- the trend over the first n - test_points values: `none` (0), `avg` (their mean), anything else a
  least-squares line (slope = sum((t - t̄)(y - ȳ)) / sum((t - t̄)²), the mean when fewer than two);
- the seasonal part, for a given period > 1: per phase, the exact median of the detrended learned
  values (the sorted middle one, or the mean of the middle two);
- baseline = trend + seasonal, residual = x - baseline; anomalies: Tukey's scores of the residual
  (udfs.tukey_scores: 10th/90th percentiles, `tukey` 25th/75th), flag ±1 beyond ±threshold.

The reals agree with numpy's to rounding (sums in another order: the differential test's 1e-9).
Where one rounding step could change more than a real (a flag at the threshold, the Tukey spread
of a residual that is zero but for rounding), the query is refused when it runs rather than
answer a flag numpy might not give. A detected period (seasonality -1, the default of
series_decompose_anomalies) is periods.py's: series_math's lag, or a refusal when it runs where
rounding could pick another.
"""

from __future__ import annotations

import re

from sqlglot import exp

from .periods import detected_period
from .refusals import refuse
from .udfs import (
    _NUMBERS,
    _constant_options,
    _floats_json,
    _json_array,
    _let,
    _number,
    _percentile,
    _refused_if,
    _series_answer,
    _with_series,
    tukey_scores,
)

_DECOMPOSE = "__kql_series_decompose"
_ANOMALIES = "__kql_series_decompose_anomalies"
_CLOSE = 1e-9  # a flag or a spread this close (relatively) to its edge could be rounding's


def lower_decompose(tree: exp.Expr) -> exp.Expr:
    """`kql_compute('__kql_series_decompose[_anomalies]', series, options)` as ClickHouse's
    (see the module doc); runs before udfs.lower_udfs, which refuses the names."""
    def swap(node: exp.Expr) -> exp.Expr:
        if not (isinstance(node, exp.Anonymous) and node.name.lower() == "kql_compute" and len(node.expressions) == 3):
            return node
        function, series, options = node.expressions
        name = function.name if isinstance(function, exp.Literal) else ""
        if name == _DECOMPOSE:
            return _with_series(_decompose(_constant_options(options)), series)
        if name == _ANOMALIES:
            return _with_series(_anomalies(_constant_options(options)), series)
        return node
    return tree.transform(swap, copy=False)


_FIELDS = ("baseline", "seasonal", "trend", "residual", "ad_flag", "ad_score")


def decompose_fields(tree: exp.Expr) -> exp.Expr:
    """A part of the bag (`json_extract(__kql_m<k>, '$.trend')`, the translator's read of one
    output) is its array's text as the bag holds it: ClickHouse's JSONExtractRaw would rewrite
    `1.0` as `1`, a long in the answer where DuckDB's text keeps a real. The bags are built
    above (flat arrays of numbers and nulls, no `]` inside), so the text is cut out by a pattern."""
    def swap(node: exp.Expr) -> exp.Expr:
        field = _bag_field(node)
        if field is None:
            return node
        pattern = exp.Literal.string(f'"{field}":(\\[[^\\]]*\\])')
        return exp.Anonymous(this="extract", expressions=[node.this.copy(), pattern])
    return tree.transform(swap, copy=False)


def _bag_field(node: exp.Expr) -> str | None:
    if not (isinstance(node, exp.JSONExtract) and isinstance(node.this, exp.Column)
            and re.fullmatch(r"__kql_m\d+", node.this.name) and isinstance(node.expression, exp.JSONPath)):
        return None
    parts = node.expression.expressions
    if len(parts) == 2 and isinstance(parts[0], exp.JSONPathRoot) and isinstance(parts[1], exp.JSONPathKey) \
            and parts[1].this in _FIELDS:
        return str(parts[1].this)
    return None


def _decompose(options: list) -> str:
    seasonality, trend, test_points = _option(options, 0, -1), _text(options, 1, "avg"), _option(options, 2, 0)
    parts = _parts(seasonality, trend, test_points, _option(options, 3, 0.6))
    fields = ("baseline", "seasonal", "trend", "residual")
    bag = "concat('{', " + ", ',', ".join(f"'\"{f}\":', {_floats_json(f'__kql_d{f}')}" for f in fields) + ", '}')"
    return _series_answer(_let({"__kql_dx": _NUMBERS}, parts(bag)))


def _anomalies(options: list) -> str:
    threshold = _option(options, 0, 1.5)
    seasonality, trend = _option(options, 1, -1), _text(options, 2, "linefit")
    test_points, method = _option(options, 3, 0), _text(options, 4, "ctukey")
    low, high = (25.0, 75.0) if method == "tukey" else (10.0, 90.0)
    parts = _parts(seasonality, trend, test_points, _option(options, 5, 0.6))
    exact = trend in ("none", "avg") and 0 <= int(seasonality) <= 1
    spread = _let({"__kql_sr": "arraySort(arrayFilter(v -> isNotNull(v), __kql_dresidual))"},
                  f"if(length(__kql_sr) = 0, 0., {_percentile('__kql_sr', 'length(__kql_sr)', high / 100)} - "
                  f"{_percentile('__kql_sr', 'length(__kql_sr)', low / 100)})")
    scale = "arrayMax(arrayMap(v -> abs(ifNull(v, 0.)), __kql_dresidual))"
    rounding = _refused_if(f"__kql_dspread < {_CLOSE} * {scale} AND NOT (__kql_dspread = 0 AND {int(exact)})",
                           "series_decompose_anomalies over a residual whose spread is within rounding of zero")
    at_edge = _refused_if(f"arrayExists(s -> isNotNull(s) AND abs(abs(s) - {threshold!r}) <= {_CLOSE} * greatest(1., "
                          f"{abs(threshold)!r}), __kql_dscore)", "series_decompose_anomalies with a score at the threshold")
    flags = _json_array(f"arrayMap(s -> toString(if(ifNull(s > {threshold!r}, 0), 1, if(ifNull(s < {-threshold!r}, 0), -1, 0))), "
                        "__kql_dscore)")
    bag = (f"if({rounding} = 0 AND {at_edge} = 0, concat('{{\"ad_flag\":', {flags}, ',\"ad_score\":', "
           f"{_floats_json('__kql_dscore')}, ',\"baseline\":', {_floats_json('__kql_dbaseline')}, '}}'), NULL)")
    scored = _let({"__kql_dspread": spread, "__kql_dscore": tukey_scores("__kql_dresidual", low, high)}, bag)
    return _series_answer(_let({"__kql_dx": _NUMBERS}, parts(scored)))


def _parts(seasonality: float, trend: str, test_points: float, season_threshold: float):
    """A function wrapping a body in the bindings __kql_dtrend, __kql_dseasonal, __kql_dbaseline
    and __kql_dresidual over __kql_dx (series_math.decompose)."""
    detect = int(seasonality) < 0
    period = "__kql_dper" if detect else str(int(seasonality))
    learn = f"greatest(toInt64(length(__kql_dx)) - {max(int(test_points), 0)}, 0)"
    known = f"arrayFilter((v, i) -> i <= {learn} AND isNotNull(v), __kql_dx, arrayEnumerate(__kql_dx))"
    line = _trend(trend, known, learn)
    detrended = "arrayMap((v, l) -> v - l, __kql_dx, __kql_dtrend)"
    seasonal = "arrayMap(v -> 0., __kql_dx)"
    if detect or int(seasonality) > 1:
        phase = (f"arraySort(arrayMap(v -> assumeNotNull(v), arrayFilter((v, j) -> (j - 1) % {period} = __kql_p "
                 f"AND j <= {learn} AND isNotNull(v), __kql_dd, arrayEnumerate(__kql_dd))))")
        median = ("if(length(__kql_m) = 0, 0., if(length(__kql_m) % 2 = 1, __kql_m[intDiv(length(__kql_m), 2) + 1], "
                  "(__kql_m[intDiv(length(__kql_m), 2)] + __kql_m[intDiv(length(__kql_m), 2) + 1]) / 2))")
        medians = f"arrayMap(__kql_p -> {_let({'__kql_m': phase}, median)}, range({period}))"
        seasonal = _let({"__kql_dd": detrended}, _let({"__kql_med": medians},
                        f"arrayMap(i -> __kql_med[(i - 1) % {period} + 1], arrayEnumerate(__kql_dx))"))
        if detect:  # detected (periods.py): 0 or 1 is none; 2 stands in for it in the dead branch
            detected = detected_period(f"arraySlice({detrended}, 1, {learn})", season_threshold)
            seasonal = _let({"__kql_dp": detected}, f"if(__kql_dp > 1, {_let({'__kql_dper': 'greatest(__kql_dp, 2)'}, seasonal)}, "
                            "arrayMap(v -> 0., __kql_dx))")

    def wrap(body: str) -> str:
        residual = "arrayMap((v, b) -> v - b, __kql_dx, __kql_dbaseline)"
        with_residual = _let({"__kql_dresidual": residual}, body)
        with_baseline = _let({"__kql_dbaseline": "arrayMap((l, s) -> l + s, __kql_dtrend, __kql_dseasonal)"}, with_residual)
        return _let({"__kql_dtrend": line}, _let({"__kql_dseasonal": seasonal}, with_baseline))
    return wrap


def _trend(kind: str, known: str, learn: str) -> str:
    zeros = "arrayMap(v -> 0., __kql_dx)"
    if kind == "none":
        return zeros
    mean = "arraySum(__kql_k) / length(__kql_k)"
    flat = f"arrayMap(v -> {mean}, __kql_dx)"
    if kind == "avg":
        return _let({"__kql_k": f"arrayMap(v -> assumeNotNull(v), {known})"}, f"if(length(__kql_k) = 0, {zeros}, {flat})")
    times = f"arrayMap(i -> toFloat64(i - 1), arrayFilter((i, v) -> i <= {learn} AND isNotNull(v), arrayEnumerate(__kql_dx), __kql_dx))"
    slope = ("arraySum(arrayMap((t, y) -> (t - __kql_tm) * (y - __kql_ym), __kql_t, __kql_k)) / "
             "arraySum(arrayMap(t -> (t - __kql_tm) * (t - __kql_tm), __kql_t))")
    fitted = _let({"__kql_tm": "arraySum(__kql_t) / length(__kql_t)", "__kql_ym": mean},
                  _let({"__kql_sl": slope}, "arrayMap(i -> (__kql_ym - __kql_sl * __kql_tm) + __kql_sl * toFloat64(i - 1), "
                                            "arrayEnumerate(__kql_dx))"))
    return _let({"__kql_k": f"arrayMap(v -> assumeNotNull(v), {known})", "__kql_t": times},
                f"if(length(__kql_k) = 0, {zeros}, if(length(__kql_k) < 2, {flat}, {fitted}))")


def _option(options: list, at: int, default: float) -> float:
    value = options[at] if len(options) > at and options[at] is not None else default
    if not _number(value):
        refuse("series_decompose options that are not numbers")
    return value


def _text(options: list, at: int, default: str) -> str:
    value = options[at] if len(options) > at and options[at] is not None else default
    if not isinstance(value, str):
        refuse("series_decompose options that are not text")
    return value
