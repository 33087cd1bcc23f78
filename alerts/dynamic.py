"""Dynamic thresholds: a band learned from a rule's own history, per alert instance.

The method (README "Dynamic thresholds"):
- History: the instance's measured value in each past window, up to 28 days (alert_values). A new
  dynamic rule backfills up to 7 days of windows from the stored telemetry before it first judges.
- Seasonality: with at least 7 days of history the band is learned from the windows measured
  within half an hour of the same time of day (daily seasonality); with at least 3 weeks, of the
  same weekday too (weekly). A sparse slot widens, half an hour each side at a time, to two hours. With less than 7 days, from all windows
  (no seasonality), once there are MIN_POINTS of them; before that the rule judges nothing.
- Robust centre and spread: the median of those values and their MAD (median absolute deviation,
  times 1.4826 so that it estimates a standard deviation), floored at 5% of the median's size so a
  series that never moved does not fire on the first wobble.
- Sensitivity sets the band's half-width in those units: high 2, medium 3, low 4. A value above
  the upper bound (GreaterThan), below the lower (LessThan), or either (GreaterOrLessThan) fails.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import numpy as np

SENSITIVITY = {"high": 2.0, "medium": 3.0, "low": 4.0}
MIN_POINTS = 12
"""Windows needed before a band is learned at all."""
SLOT_POINTS = 5
"""Values a seasonal slot needs before it stands alone (else the neighbouring hours join)."""
DAILY = timedelta(days=7)
WEEKLY = timedelta(days=21)
MAD_TO_SIGMA = 1.4826
RELATIVE_FLOOR = 0.05
LEARN_DAYS = 7


def band(times: Sequence[datetime], values: Sequence[float | None], at: datetime,
         sensitivity: str) -> tuple[float, float] | None:
    """(lower, upper) for a value measured at `at`, learned from the history (times, values);
    None when there is too little history to judge."""
    pairs = [(t, v) for t, v in zip(times, values) if v is not None and np.isfinite(v) and t < at]
    if len(pairs) < MIN_POINTS:
        return None
    when = np.array([t.timestamp() for t, _ in pairs])
    data = np.array([v for _, v in pairs], dtype=float)
    span = timedelta(seconds=float(when.max() - when.min()))
    chosen = data
    if span >= DAILY - timedelta(hours=12):
        chosen = _seasonal_slot(pairs, data, at, weekly=span >= WEEKLY - timedelta(hours=12))
    centre = float(np.median(chosen))
    spread = float(np.median(np.abs(chosen - centre))) * MAD_TO_SIGMA
    spread = max(spread, RELATIVE_FLOOR * abs(centre), 1e-9)
    k = SENSITIVITY[sensitivity]
    return centre - k * spread, centre + k * spread


def _seasonal_slot(pairs: list, data: np.ndarray, at: datetime, weekly: bool) -> np.ndarray:
    """The values measured within half an hour of `at`'s time of day (on its weekday when weekly),
    widening by half an hour each side while the slot holds fewer than SLOT_POINTS. Centred on `at`
    itself, not on a clock hour: on a steep daily ramp an hour's values differ by more than noise."""
    minutes = np.array([t.hour * 60 + t.minute for t, _ in pairs])
    days = np.array([t.weekday() for t, _ in pairs])
    target = at.hour * 60 + at.minute
    distance = np.abs((minutes - target + 720) % 1440 - 720)
    for reach in (30, 60, 90, 120):
        mask = distance <= reach
        if weekly:
            mask &= days == at.weekday()
        if mask.sum() >= SLOT_POINTS:
            return data[mask]
    return data


def breaches(value: float | None, bounds: tuple[float, float] | None, operator: str) -> bool:
    """Whether `value` lies outside the learned band on the side `operator` watches."""
    if value is None or bounds is None:
        return False
    lower, upper = bounds
    if operator == "GreaterThan":
        return value > upper
    if operator == "LessThan":
        return value < lower
    return value > upper or value < lower
