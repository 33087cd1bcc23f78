"""Dynamic thresholds on generated seasonal data: a week of a daily cycle with noise, then an
injected anomaly (breaches the learned band) and a normal day (breaches nothing)."""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import numpy as np

from alerts.dynamic import band, breaches

START = datetime(2026, 11, 1)
STEP = timedelta(minutes=15)


def seasonal(at: datetime, rng: np.random.Generator) -> float:
    """Requests per window: busy by day, quiet at night, with noise."""
    hour = at.hour + at.minute / 60
    return 200 + 150 * math.sin((hour - 6) / 24 * 2 * math.pi) + rng.normal(0, 10)


def history(days: int, rng: np.random.Generator) -> tuple[list[datetime], list[float]]:
    times = [START + STEP * i for i in range(int(days * 24 * 3600 / STEP.total_seconds()))]
    return times, [seasonal(t, rng) for t in times]


def test_an_anomaly_breaches_the_learned_band_and_a_normal_day_does_not():
    rng = np.random.default_rng(7)
    times, values = history(7, rng)
    day = [times[-1] + STEP * (i + 1) for i in range(96)]
    normal = [seasonal(t, rng) for t in day]
    assert not any(breaches(v, band(times, values, t, "medium"), "GreaterOrLessThan") for t, v in zip(day, normal))
    night = day[12]  # 03:00, where ~70 is usual: 250 is normal at noon, not at night
    assert breaches(250.0, band(times, values, night, "medium"), "GreaterThan")
    noon = day[48]
    assert not breaches(250.0, band(times, values, noon, "medium"), "GreaterThan")
    assert breaches(0.0, band(times, values, noon, "low"), "LessThan")  # traffic stopped on a busy service


def test_sensitivity_narrows_the_band_and_too_little_history_judges_nothing():
    rng = np.random.default_rng(3)
    times, values = history(7, rng)
    at = times[-1] + STEP
    widths = {s: (lambda b: b[1] - b[0])(band(times, values, at, s)) for s in ("low", "medium", "high")}
    assert widths["low"] > widths["medium"] > widths["high"]
    assert band(times[:5], values[:5], at, "high") is None
    assert not breaches(1e9, None, "GreaterThan")
