"""The time ranges the pages offer, and the chart bucket that suits each.

A bucket is chosen so a chart has 30 to 150 points: enough to see a shape, few enough rows that
the Overview stays fast over 30 days of data.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class TimeRange:
    label: str
    timespan: str
    """ISO 8601 duration for the query API's `timespan`."""
    bucket: str
    """KQL timespan literal for `bin(timestamp, ...)`."""
    bucket_minutes: float

    @property
    def step(self) -> pd.Timedelta:
        return pd.Timedelta(minutes=self.bucket_minutes)

    def buckets(self, now: pd.Timestamp | None = None, step: pd.Timedelta | None = None) -> pd.DatetimeIndex:
        """The start of every bucket a `bin(timestamp, bucket)` (or `step`) over the range ending
        `now` can return, oldest first: a chart's x axis, whether or not each bucket holds data."""
        now = pd.Timestamp.now(tz="UTC") if now is None else now
        step = self.step if step is None else step
        return pd.date_range((now - pd.Timedelta(self.timespan)).floor(step), now.floor(step), freq=step)


RANGES = (
    TimeRange("Last 30 minutes", "PT30M", "1m", 1),
    TimeRange("Last hour", "PT1H", "1m", 1),
    TimeRange("Last 6 hours", "PT6H", "5m", 5),
    TimeRange("Last 12 hours", "PT12H", "10m", 10),
    TimeRange("Last 24 hours", "P1D", "15m", 15),
    TimeRange("Last 3 days", "P3D", "1h", 60),
    TimeRange("Last 7 days", "P7D", "2h", 120),
    TimeRange("Last 30 days", "P30D", "6h", 360),
)
DEFAULT = RANGES[1]


def by_label(label: str) -> TimeRange:
    return next((r for r in RANGES if r.label == label), DEFAULT)
