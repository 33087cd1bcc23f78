"""`tdigest`, `tdigest_merge` (`merge_tdigest`) and `percentile_tdigest`: a mergeable summary of
a distribution.

Kusto's digest is an opaque dynamic value; ours is `{"n": count, "q": [1001 quantiles]}`, the
values at every 0.1 % step (DuckDB's `quantile_disc`, the nearest-rank method `percentile`
uses, so `percentile_tdigest(tdigest(x), 95)` equals `percentile(x, 95)`). A percentile between
two steps is interpolated linearly. Merging weighs each digest by its count: the merged
distribution's CDF is the weighted mean of the parts' CDFs, read back at the same steps.
"""

from __future__ import annotations

import bisect
from typing import Any

STEPS = 1000
GRID_SQL = "[" + ", ".join(f"{i / STEPS!r}" for i in range(STEPS + 1)) + "]"
"""The quantile positions, as a DuckDB list literal."""


def aggregate_sql(value: str) -> str:
    """The `tdigest(value)` aggregate in SQL (a JSON bag)."""
    return (f"CAST(json_object('n', count({value}), 'q', "
            f"quantile_disc(CAST({value} AS DOUBLE), {GRID_SQL})) AS JSON)")


def _valid(digest: Any) -> bool:
    return (isinstance(digest, dict) and isinstance(digest.get("n"), int) and digest["n"] > 0
            and isinstance(digest.get("q"), list) and len(digest["q"]) == STEPS + 1)


def _cdf(quantiles: list[float], x: float) -> float:
    """The share of values at or below *x*, read off one digest's quantiles."""
    if x < quantiles[0]:
        return 0.0
    if x >= quantiles[-1]:
        return 1.0
    # i grid positions hold a value <= x; the last of them, (i - 1) / STEPS, undercounts a value
    # held at a share of the rows between two steps, so the share is read as i / STEPS.
    return min(bisect.bisect_right(quantiles, x) / STEPS, 1.0)


def merge(digests: Any) -> dict | None:
    """One digest for all of *digests* (a list; nulls and non-digests are skipped)."""
    parts = [d for d in digests if _valid(d)] if isinstance(digests, list) else []
    if not parts:
        return {"n": 0, "q": None}
    if len(parts) == 1:
        return parts[0]
    total = sum(d["n"] for d in parts)
    candidates = sorted({v for d in parts for v in d["q"]})
    cdf = [sum(d["n"] * _cdf(d["q"], x) for d in parts) / total for x in candidates]
    merged = []
    for i in range(STEPS + 1):
        k = bisect.bisect_left(cdf, i / STEPS - 1e-12)
        merged.append(candidates[min(k, len(candidates) - 1)])
    return {"n": total, "q": merged}


def percentile(digest: Any, point: Any = 50, *_: Any) -> float | None:
    """The *point*-th percentile (0..100) of *digest*, interpolated between steps."""
    if not _valid(digest) or not isinstance(point, (int, float)) or not 0 <= point <= 100:
        return None
    position = point / 100 * STEPS
    low = int(position)
    if low >= STEPS:
        return float(digest["q"][STEPS])
    share = position - low
    a, b = digest["q"][low], digest["q"][low + 1]
    return float(a + (b - a) * share)
