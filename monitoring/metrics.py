"""The drift and data-quality metrics, on two sketches (monitoring/sketch.py): a reference and a
production window binned on the reference's edges.

Definitions, and where they come from (thresholds in monitoring/definition.py):
- normalized Wasserstein: W1 between the two distributions divided by the reference's standard
  deviation (at least 0.001), Evidently's `wasserstein` and Azure ML's numerical default. W1 is the
  mean gap between the two quantile functions at 1,000 levels, so it needs no raw rows.
- Jensen-Shannon distance: scipy's `jensenshannon` (natural logarithm, as Evidently; 0 to
  sqrt(ln 2)) of the bin shares, on bins fixed from the reference (Evidently bins numerical
  features over reference and current together, so its numerical values differ from ours; its
  categorical ones match).
- PSI: sum((ref - cur) * ln(ref / cur)) over the bin shares, empty bins filled as Evidently fills
  them (0.0001, or a millionth of the smallest share when that is smaller).
- two-sample KS (small windows, up to sketch.SAMPLE_SIZE values, all of which the window's sketch
  keeps): scipy's `ks_2samp` of the window against the reference's sample; the value is the p-value.
- Pearson chi-squared: scipy's `chisquare` of the window's category counts against the reference's
  shares scaled to the window's size (Evidently's `chisquare`); the value is the p-value. A category
  the reference never saw makes the test meaningless (expected 0): its p-value is then 0, and the
  category is reported by `new_categories`.
- L-infinity (Chebyshev): the largest gap between two bin shares (prediction drift).
- data quality, as Azure ML defines it: null value rate, data type error rate (present values not
  of the reference's type), out-of-bounds rate (outside the reference's min/max, or not in its
  category set), each over the window's rows.
"""

from __future__ import annotations

import numpy as np

from monitoring.sketch import FeatureSketch

P_VALUE_METRICS = frozenset({"ks", "chi_squared"})
"""Metrics whose value is a p-value: drift when it falls below the threshold (others: at or above it)."""


def shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def filled(percents: np.ndarray) -> np.ndarray:
    """Evidently's fill of empty bins before PSI."""
    out = percents.astype(float).copy()
    nonzero = out[out != 0]
    if nonzero.size == 0:
        return np.full(len(out), 1.0 / len(out))
    smallest = nonzero.min()
    out[out == 0] = smallest / 10**6 if smallest <= 0.0001 else 0.0001
    return out


def jensen_shannon(reference: np.ndarray, current: np.ndarray) -> float:
    if not reference.any() or not current.any():
        return 0.0
    from scipy.spatial import distance  # scipy loads in ~2 s: only when a run needs it, not with the collector

    return float(distance.jensenshannon(reference, current))


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    ref, cur = filled(reference), filled(current)
    return float(np.sum((ref - cur) * np.log(ref / cur)))


def linf(reference: np.ndarray, current: np.ndarray) -> float:
    return float(np.max(np.abs(reference - current))) if len(reference) else 0.0


def normalized_wasserstein(reference: FeatureSketch, current: FeatureSketch) -> float:
    if not reference.quantiles or not current.quantiles:
        return 0.0
    gap = np.mean(np.abs(np.asarray(reference.quantiles) - np.asarray(current.quantiles)))
    return float(gap / max(reference.std or 0.0, 0.001))


def ks_p_value(reference: FeatureSketch, current: FeatureSketch) -> float:
    if not reference.sample or not current.sample:
        return 1.0
    from scipy import stats

    return float(stats.ks_2samp(reference.sample, current.sample).pvalue)


def category_counts(reference: FeatureSketch, current: FeatureSketch) -> tuple[list[str], np.ndarray, np.ndarray]:
    """The union of both sketches' categories, with each side's counts."""
    keys = list(dict.fromkeys([*reference.categories, *current.categories]))
    ref = np.array([reference.categories.get(k, 0) for k in keys], dtype=float)
    cur = np.array([current.categories.get(k, 0) for k in keys], dtype=float)
    return keys, ref, cur


def chi_squared_p_value(reference: np.ndarray, current: np.ndarray) -> float:
    if not current.sum() or not reference.sum():
        return 1.0
    expected = reference * current.sum() / reference.sum()
    if np.any((expected == 0) & (current > 0)):
        return 0.0
    keep = expected > 0
    from scipy import stats

    return float(stats.chisquare(current[keep], expected[keep]).pvalue)


def binned(reference: FeatureSketch, current: FeatureSketch) -> tuple[list[str], np.ndarray, np.ndarray]:
    """(bin labels, reference shares, current shares): numerical bins, or categories."""
    if reference.kind == "numerical":
        edges = reference.edges
        labels = [f"< {edges[0]:g}"] if edges else ["all"]
        labels += [f"[{lo:g}, {hi:g})" for lo, hi in zip(edges[:-1], edges[1:], strict=False)]
        labels += [f"> {edges[-1]:g}"] if edges else []
        return labels, shares(np.asarray(reference.counts, float)), shares(np.asarray(current.counts, float))
    keys, ref, cur = category_counts(reference, current)
    return keys, shares(ref), shares(cur)


def drift_metrics(reference: FeatureSketch, current: FeatureSketch, prediction: bool = False) -> dict[str, float]:
    """Every drift metric that applies to the feature's kind, by name."""
    _, ref, cur = binned(reference, current)
    values = {"jensen_shannon": jensen_shannon(ref, cur), "psi": psi(ref, cur)}
    if reference.kind == "numerical":
        values["normalized_wasserstein"] = normalized_wasserstein(reference, current)
        if current.present <= len(current.sample):  # a small window: its every value is in the sample
            values["ks"] = ks_p_value(reference, current)
    else:
        _, ref_counts, cur_counts = category_counts(reference, current)
        values["chi_squared"] = chi_squared_p_value(ref_counts, cur_counts)
        values["new_categories"] = float(sum(n for c, n in current.categories.items() if c not in reference.categories))
    if prediction:
        values["linf"] = linf(ref, cur)
    return values


def quality_metrics(current: FeatureSketch) -> dict[str, float]:
    rows = current.rows or 1
    return {"null_rate": current.nulls / rows, "data_type_error_rate": current.type_errors / rows,
            "out_of_bounds_rate": current.out_of_bounds / rows}


def is_drift(metric: str, value: float, threshold: float) -> bool:
    if metric in P_VALUE_METRICS:
        return value < threshold
    if metric in ("null_rate", "data_type_error_rate", "out_of_bounds_rate", "new_categories"):
        return value > threshold
    return value >= threshold
