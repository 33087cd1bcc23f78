"""Reference sketches: what a monitor keeps of its reference data, so that no run rescans it.

Per numerical feature: bin edges fixed from the reference (Sturges' rule over its range, plus one
open bin below its minimum and one above its maximum, so production values outside the range still
land somewhere), the counts in them, 1,000 quantiles (the normalized Wasserstein distance is the
mean gap between the two quantile functions), a sample of up to SAMPLE_SIZE values (for the
two-sample KS test of small windows), min, max, mean, standard deviation and null rate. Per
categorical feature: the count of each value (the MAX_CATEGORIES most frequent; the rest folded as
OTHER) and the null rate. The same builder sketches a production window, so both sides of every
comparison are alike.

Types are inferred as Azure ML and Evidently do: a numeric column with more than
CATEGORICAL_MAX_UNIQUE distinct values is numerical, anything else (text, booleans, numerics with
few values, such as a class label) is categorical.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

QUANTILES = 1000
EXACT_QUANTILES_UP_TO = 100_000
FINE_BINS = 2**16
SAMPLE_SIZE = 5000
MAX_CATEGORIES = 1000
CATEGORICAL_MAX_UNIQUE = 5
OTHER = "\u2026other"


@dataclass
class FeatureSketch:
    name: str
    kind: str  # "numerical" | "categorical"
    rows: int
    nulls: int
    edges: list[float] = field(default_factory=list)
    """Inner bin edges; bin 0 is (-inf, edges[0]), the last is [edges[-1], +inf)."""
    counts: list[int] = field(default_factory=list)
    quantiles: list[float] = field(default_factory=list)
    sample: list[float] = field(default_factory=list)
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    categories: dict[str, int] = field(default_factory=dict)
    type_errors: int = 0
    """Values present that are not of the feature's type (text in a numerical feature)."""
    out_of_bounds: int = 0
    """Values outside the reference's [min, max] (numerical) or category set (categorical);
    counted only when sketching against a reference."""

    @property
    def null_rate(self) -> float:
        return self.nulls / self.rows if self.rows else 0.0

    @property
    def present(self) -> int:
        return self.rows - self.nulls

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> FeatureSketch:
        return cls(**data)


def infer_kind(values: np.ndarray) -> str:
    """numerical for numbers with more than CATEGORICAL_MAX_UNIQUE distinct values, else categorical."""
    if values.dtype.kind in "iuf":
        finite = values[~np.isnan(values)] if values.dtype.kind == "f" else values
        return "numerical" if np.unique(finite[:100_000]).size > CATEGORICAL_MAX_UNIQUE else "categorical"
    return "categorical"


def sturges_edges(values: np.ndarray) -> list[float]:
    if values.size == 0:
        return []
    return [float(e) for e in np.unique(np.histogram_bin_edges(values, bins="sturges"))]


def bin_counts(values: np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts in the open-ended bins of `edges` (len(edges) + 1 bins)."""
    if not edges:
        return np.array([values.size])
    index = np.searchsorted(np.asarray(edges), values, side="right")
    index[values == edges[-1]] = len(edges) - 1  # the maximum closes the last inner bin, as np.histogram's
    return np.bincount(index, minlength=len(edges) + 1)


def quantile_levels() -> np.ndarray:
    return (np.arange(QUANTILES) + 0.5) / QUANTILES


def quantiles(values: np.ndarray) -> np.ndarray:
    """The QUANTILES quantiles: exact up to EXACT_QUANTILES_UP_TO values; beyond, read off a
    histogram of FINE_BINS equal bins (linear within a bin), off by at most the range / FINE_BINS:
    a sort of a million values per feature is what a run would otherwise spend its time on."""
    levels = quantile_levels()
    if values.size <= EXACT_QUANTILES_UP_TO:
        return np.quantile(values, levels)
    low, high = float(values.min()), float(values.max())
    if low == high:
        return np.full(QUANTILES, low)
    width = (high - low) / (FINE_BINS - 1)
    counts = np.bincount(((values - low) / width).astype(np.int64), minlength=FINE_BINS)
    cumulative = np.cumsum(counts)
    targets = levels * values.size
    position = np.searchsorted(cumulative, targets, side="left")
    before = np.where(position > 0, cumulative[position - 1], 0)
    within = (targets - before) / np.maximum(counts[position], 1)
    return low + (position + within) * width


def numerical(name: str, values: np.ndarray, nulls: int, reference: FeatureSketch | None = None,
              type_errors: int = 0) -> FeatureSketch:
    """A numerical feature's sketch: `values` without the nulls (NaN stands for a value that was
    not a number: one of `type_errors`); binned on the reference's edges when given."""
    values = values[~np.isnan(values)]
    edges = sturges_edges(values) if reference is None else reference.edges
    sketch = FeatureSketch(name, "numerical", int(values.size + nulls + type_errors), int(nulls), edges=edges,
                           counts=[int(c) for c in bin_counts(values, edges)], type_errors=int(type_errors))
    if reference is not None and reference.minimum is not None and values.size:
        sketch.out_of_bounds = int(np.count_nonzero((values < reference.minimum) | (values > reference.maximum)))
    if values.size:
        sketch.quantiles = [float(q) for q in quantiles(values)]
        rng = np.random.default_rng(0)
        sample = values if values.size <= SAMPLE_SIZE else rng.choice(values, SAMPLE_SIZE, replace=False)
        sketch.sample = [float(v) for v in sample]
        sketch.minimum, sketch.maximum = float(values.min()), float(values.max())
        sketch.mean, sketch.std = float(values.mean()), float(values.std())
    return sketch


def categorical(name: str, values: np.ndarray, nulls: int, reference: FeatureSketch | None = None) -> FeatureSketch:
    """A categorical feature's sketch from its values (nulls left out)."""
    labels, counts = np.unique(values.astype(str), return_counts=True)
    return categorical_counts(name, dict(zip(labels.tolist(), counts.tolist(), strict=True)), nulls, reference)


def categorical_counts(name: str, tally: dict[str, int], nulls: int, reference: FeatureSketch | None = None) -> FeatureSketch:
    """A categorical feature's sketch from its value counts: the MAX_CATEGORIES most frequent, the
    rest folded into OTHER; out of bounds counted against the reference's categories."""
    categories: dict[str, int] = {}
    for rank, (label, count) in enumerate(sorted(tally.items(), key=lambda item: -item[1])):
        key = str(label) if rank < MAX_CATEGORIES else OTHER
        categories[key] = categories.get(key, 0) + int(count)
    sketch = FeatureSketch(name, "categorical", int(sum(tally.values()) + nulls), int(nulls), categories=categories)
    if reference is not None:
        sketch.out_of_bounds = sum(n for c, n in tally.items() if c not in reference.categories)
    return sketch


def category_text(values: np.ndarray) -> np.ndarray:
    """Values as the category labels sketches use: whole floats as integers ('1', not '1.0'), so a
    class label read from CSV and the same label collected from JSON are one category."""
    if values.dtype.kind == "f":
        whole = np.isfinite(values) & (values == np.round(values))
        text = values.astype(str)
        text[whole] = values[whole].astype(np.int64).astype(str)
        return text
    if values.dtype.kind == "b":
        return np.where(values, "true", "false")
    return values.astype(str)
