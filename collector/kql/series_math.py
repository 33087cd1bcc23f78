"""The arithmetic of Kusto's series functions, on numpy arrays (missing values are NaN).

Each function follows the documented algorithm; where the documentation leaves a detail open
the choice is said here, so a test can hold it:

- `stats`: min/max and their first index, mean, and the *sample* stdev and variance (n - 1), as
  series_stats documents; missing values are skipped.
- `fir`: y[i] = sum_j f[j] * x[i - j + shift] with x zero outside the series, shift 0, or
  (len(f) - 1) // 2 when centered; normalized by sum(f) when asked (the default).
- `outliers`: Tukey's fences on percentiles (linear interpolation): for x above the high
  percentile P_hi the score is (x - P_hi) / (P_hi - P_lo), below P_lo (x - P_lo) / (P_hi - P_lo),
  else 0. `ctukey` uses the 10th and 90th percentiles (or those given), `tukey` the 25th/75th.
- `decompose`: trend first (`avg`: the mean; `linefit`: least squares line; `none`: 0), then
  the seasonal part as the median of the detrended values of each phase of the period (robust
  to the outliers being looked for, so one spike does not shift its whole phase; period
  detected when -1, none when 0), residual = x - trend - seasonal, baseline = trend + seasonal.
  Only the first n - test_points values are learned from; trend and season extend over the rest.
- `periods`: the lag in [2, n / 2] with the highest autocorrelation of the detrended series,
  kept when that correlation reaches the threshold (0.6 by default), as a stand-in for
  series_periods_detect's scoring.
- `anomalies`: decompose (trend `linefit` by default), then `outliers` on the residual; the flag
  is +1/-1 where the score is above threshold / below -threshold.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import LIMIT_MARKER

Array = np.ndarray
MAX_WORK = 200_000_000
"""The most multiply-adds one series_fir may cost: the UDF runs to completion once called."""


def fill_linear(x: Array, fill_edges: bool = True, constant: float | None = None) -> Array:
    known = np.flatnonzero(~np.isnan(x))
    if len(known) == 0:
        return x.copy() if constant is None else np.full(len(x), constant, dtype=float)
    out = x.copy()
    inside = np.arange(known[0], known[-1] + 1)
    out[inside] = np.interp(inside, known, x[known])
    if fill_edges:
        out[:known[0]] = x[known[0]]
        out[known[-1] + 1:] = x[known[-1]]
    elif constant is not None:
        out[:known[0]] = constant
        out[known[-1] + 1:] = constant
    return out


def stats(x: Array) -> dict:
    """series_stats_dynamic's bag."""
    values = x[~np.isnan(x)]
    if len(values) == 0:
        return {"min": None, "min_idx": None, "max": None, "max_idx": None,
                "avg": None, "stdev": None, "variance": None}
    variance = float(np.var(values, ddof=1)) if len(values) > 1 else 0.0
    return {
        "min": float(values.min()), "min_idx": int(np.nanargmin(x)),
        "max": float(values.max()), "max_idx": int(np.nanargmax(x)),
        "avg": float(values.mean()), "stdev": math.sqrt(variance), "variance": variance,
    }


def fir(x: Array, taps: Array, normalize: bool = True, center: bool = False) -> Array:
    if len(x) * max(len(taps), 1) > MAX_WORK:
        raise ValueError(f"{LIMIT_MARKER}series_fir: a series times its filter is more than {MAX_WORK:,} steps")
    total = taps.sum() if normalize and taps.sum() != 0 else 1.0
    shift = (len(taps) - 1) // 2 if center else 0
    full = np.convolve(np.nan_to_num(x), taps)  # full[k] = sum_j taps[j] * x[k - j]
    return full[shift:shift + len(x)] / total


def outliers(x: Array, kind: str = "ctukey", low: float = 10.0, high: float = 90.0) -> Array:
    if kind == "tukey":
        low, high = 25.0, 75.0
    values = x[~np.isnan(x)]
    if len(values) == 0:
        return np.full(len(x), np.nan)
    p_lo, p_hi = np.percentile(values, [low, high])
    spread = p_hi - p_lo
    if spread == 0:
        return np.where(np.isnan(x), np.nan, 0.0)
    score = np.where(x > p_hi, (x - p_hi) / spread, np.where(x < p_lo, (x - p_lo) / spread, 0.0))
    return np.where(np.isnan(x), np.nan, score)


def trend(x: Array, kind: str, learn: int) -> Array:
    n = len(x)
    head = x[:learn]
    known = ~np.isnan(head)
    if kind == "none" or not known.any():
        return np.zeros(n)
    if kind == "avg":
        return np.full(n, float(head[known].mean()))
    t = np.arange(learn)[known]
    if len(t) < 2:
        return np.full(n, float(head[known].mean()))
    y = head[known]
    t_mean, y_mean = t.mean(), y.mean()
    slope = float(((t - t_mean) * (y - y_mean)).sum() / ((t - t_mean) ** 2).sum())
    return (y_mean - slope * t_mean) + slope * np.arange(n)


def periods(x: Array, threshold: float = 0.6) -> int:
    """The best lag by autocorrelation (module doc), all lags at once through an FFT."""
    n = len(x)
    if n < 4:
        return 0
    values = np.nan_to_num(x - np.nanmean(x))
    spectrum = np.fft.rfft(values, 2 * n)
    products = np.fft.irfft(spectrum * np.conj(spectrum))[:n]  # products[lag] = sum v[i] * v[i + lag]
    squares = np.cumsum(values * values)
    lags = np.arange(2, n // 2 + 1)
    head = squares[n - lags - 1]  # sum of v[i]^2 over the first n - lag values
    tail = squares[-1] - squares[lags - 1]  # ... over the last n - lag values
    denominator = np.sqrt(head * tail)
    scores = np.divide(products[lags], denominator, out=np.zeros(len(lags)), where=denominator > 0)
    best = int(np.argmax(scores))
    return int(lags[best]) if scores[best] > threshold + 1e-12 else 0


def decompose(x: Array, seasonality: int = -1, trend_kind: str = "avg", test_points: int = 0,
              threshold: float = 0.6) -> tuple[Array, Array, Array, Array]:
    """(baseline, seasonal, trend, residual)."""
    n = len(x)
    learn = max(n - max(test_points, 0), 0)
    line = trend(x, trend_kind, learn)
    detrended = x - line
    period = periods(detrended[:learn], threshold) if seasonality < 0 else seasonality
    seasonal = np.zeros(n)
    if period > 1:
        for phase in range(period):
            learned = detrended[phase:learn:period]
            learned = learned[~np.isnan(learned)]
            if len(learned):
                seasonal[phase::period] = float(np.median(learned))
    baseline = line + seasonal
    return baseline, seasonal, line, x - baseline


def anomalies(x: Array, threshold: float = 1.5, seasonality: int = -1, trend_kind: str = "linefit",
              test_points: int = 0, method: str = "ctukey", season_threshold: float = 0.6
              ) -> tuple[Array, Array, Array]:
    """(ad_flag, ad_score, baseline)."""
    baseline, _, _, residual = decompose(x, seasonality, trend_kind, test_points, season_threshold)
    score = outliers(residual, method)
    flag = np.where(score > threshold, 1, np.where(score < -threshold, -1, 0))
    return flag, score, baseline


def session_starts(values: list, max_from_first: Any, max_between: Any, restarts: Any = None) -> list:
    """row_window_session's session start of each value (microseconds), in order (sessions.py)."""
    flags = restarts if isinstance(restarts, list) else []
    out: list = []
    start = previous = None
    for i, value in enumerate(values):
        if not isinstance(value, (int, float)):
            out.append(None)
            continue
        restart = i < len(flags) and flags[i] is True
        if (start is None or previous is None or restart or value - start > max_from_first
                or value - previous > max_between):
            start = value
        previous = value
        out.append(start)
    return out
