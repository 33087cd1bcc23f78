"""series_math.periods on ClickHouse: the detected period of series_decompose(_anomalies) with
seasonality -1, for decompose.py.

numpy takes every lag's autocorrelation product through an FFT; here each product is summed
directly (Σ v[i] v[i + lag], n² / 2 multiply-adds, so a learned part over 4,000 points is refused).
The two agree to rounding only, so the lag is given only where rounding cannot change it, and the
query is refused when it runs otherwise:

- the centred series' energy E = Σ v² must be at least 1e-6 of Σ x² (else the mean's last bit, which
  numpy's pairwise sum and ClickHouse's sum may round apart, moves the scores), and every lag's
  normaliser sqrt(head * tail) at least 1e-3 E (each score then moves by under 1e-9);
- the best score must beat every other lag's by more than 1e-6, and be more than 1e-6 from the
  threshold (+ 1e-12, series_math's): a tie or a near tie is refused, never answered.

The prefix sums (numpy's sequential cumsum, ClickHouse's arrayCumSum) are the same operations.
"""

from __future__ import annotations

from .udfs import _let, _refused_if

MAX_POINTS = 4_000
_TIE = 1e-6


def _refusal(condition: str, what: str) -> str:
    return _refused_if(condition, f"series_decompose with a detected period {what}")


def detected_period(learned: str, threshold: float) -> str:
    """The period series_math.periods finds in *learned* (an array of Nullable(Float64), the
    detrended learned values), or a refusal (module doc); 0 for none."""
    edge = threshold + 1e-12
    scores = ("arrayMap(__kql_lag -> if(__kql_pden[__kql_lag - 1] > 0, arraySum(arrayMap((__kql_a, __kql_b) -> __kql_a * __kql_b, "
              "arraySlice(__kql_pv, 1, __kql_pn - __kql_lag), arraySlice(__kql_pv, __kql_lag + 1))) / __kql_pden[__kql_lag - 1], 0.), "
              "range(2, intDiv(__kql_pn, 2) + 1))")
    dens = ("arrayMap(__kql_lag -> sqrt(__kql_pc[__kql_pn - __kql_lag] * (__kql_pc[__kql_pn] - __kql_pc[__kql_lag])), "
            "range(2, intDiv(__kql_pn, 2) + 1))")
    second = ("arrayMax(arrayMap((__kql_s, __kql_i) -> if(__kql_i = __kql_pbest, -inf, __kql_s), __kql_ps, "
              "arrayEnumerate(__kql_ps)))")
    live = "__kql_pn >= 4 AND __kql_pe > 0"
    guards = " + ".join([
        _refusal(f"__kql_pn > {MAX_POINTS}", f"over more than {MAX_POINTS:,} points"),
        _refusal("arrayExists(__kql_v -> NOT isFinite(__kql_v), __kql_pk)", "over infinite values"),
        _refusal("__kql_pn >= 4 AND __kql_psq > 0 AND __kql_pe < 1e-6 * __kql_psq",
                 "over a series within rounding of constant"),
        _refusal(f"{live} AND arrayExists(__kql_d -> __kql_d < 1e-3 * __kql_pe, __kql_pden)",
                 "over a series whose lags hold too little of it"),
        _refusal(f"{live} AND length(__kql_ps) > 1 AND __kql_ps[__kql_pbest] - {second} <= {_TIE}",
                 "whose best lags tie to rounding"),
        _refusal(f"{live} AND abs(__kql_ps[__kql_pbest] - {edge!r}) <= {_TIE}", "whose best lag is at the threshold"),
    ])
    answer = f"if({guards} = 0 AND {live} AND __kql_ps[__kql_pbest] > {edge!r}, toInt64(__kql_pbest + 1), toInt64(0))"
    best = _let({"__kql_pbest": "arrayFirstIndex(__kql_s -> __kql_s = arrayMax(__kql_ps), __kql_ps)"}, answer)
    scored = _let({"__kql_ps": f"if({live} AND __kql_pn <= {MAX_POINTS}, {scores}, [0.])"}, best)
    normed = _let({"__kql_pden": f"if(__kql_pn >= 4, {dens}, [0.])"}, scored)
    squares = _let({"__kql_pc": "arrayCumSum(arrayMap(__kql_v -> __kql_v * __kql_v, __kql_pv))"},
                   _let({"__kql_pe": "if(__kql_pn = 0, 0., __kql_pc[__kql_pn])",
                         "__kql_psq": "arraySum(arrayMap(__kql_v -> __kql_v * __kql_v, __kql_pk))"}, normed))
    centred = _let({"__kql_pv": "arrayMap(__kql_v -> if(isNull(__kql_v), 0., assumeNotNull(__kql_v) - __kql_pm), __kql_pl)"},
                   squares)
    known = _let({"__kql_pm": "if(length(__kql_pk) = 0, 0., arraySum(__kql_pk) / length(__kql_pk))"}, centred)
    return _let({"__kql_pl": learned}, _let({"__kql_pn": "toInt64(length(__kql_pl))", "__kql_pk":
                                             "arrayMap(__kql_v -> assumeNotNull(__kql_v), arrayFilter(__kql_v -> isNotNull(__kql_v), __kql_pl))"},
                                            known))
