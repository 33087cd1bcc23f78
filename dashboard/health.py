"""The Overview's numbers: five aggregated KQL queries and the tiles derived from them.

Five queries, not one per chart: each scans its table once and returns one row per time bucket
(or a single row), so the Overview costs the same whether the range holds a thousand requests or
a million. Availability and request rate are derived here from the request buckets rather than
queried again.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from dashboard.charts import Buckets, filled
from dashboard.collector_api import QueryResult
from dashboard.time_range import TimeRange

_DURATIONS = ("avg=avg(duration), p50=percentile(duration, 50), "
              "p95=percentile(duration, 95), p99=percentile(duration, 99)")


def queries(range_: TimeRange) -> dict[str, str]:
    bucket = f"bin(timestamp, {range_.bucket})"
    return {
        "totals": f"requests | summarize requests=count(), failed=countif(success == false), {_DURATIONS}",
        "requests": f"requests | summarize requests=count(), failed=countif(success == false), {_DURATIONS} by {bucket}",
        "failed": f"requests | where success == false | summarize failed=count() by {bucket}, resultCode",
        "dependencies": ("dependencies | summarize calls=count(), failed=countif(success == false), "
                         f"avg_ms=avg(duration) by {bucket}"),
        "exceptions": f"exceptions | summarize exceptions=count() by {bucket}, type",
    }


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    help: str


def buckets(range_: TimeRange, now: pd.Timestamp | None = None) -> Buckets:
    """The Overview's time axis: every bucket of the range ending `now`."""
    return Buckets(range_.buckets(now), range_.step)


def request_series(results: dict[str, QueryResult], range_: TimeRange, axis: Buckets) -> pd.DataFrame:
    """One row per bucket of `axis` (zero-filled: 0 requests where none came, no duration or
    availability there) with the derived per-minute rate and availability (% successful)."""
    frame = filled(results["requests"].frame, "timestamp", axis, ["requests", "failed"])
    frame["per_minute"] = frame["requests"] / range_.bucket_minutes
    frame["availability"] = 100.0 * (frame["requests"] - frame["failed"]) / frame["requests"]
    return frame


def dependency_series(results: dict[str, QueryResult], axis: Buckets) -> pd.DataFrame:
    return filled(results["dependencies"].frame, "timestamp", axis, ["calls", "failed"])


def per_minute(rate: float) -> str:
    """A rate as people read it: one decimal from 1/min up, two significant digits below (3 requests
    in an hour are 0.049/min, not 0.0/min), and 0 as 0."""
    return f"{rate:,.1f}" if rate >= 1 or rate == 0 else f"{rate:.2g}"


def tiles(results: dict[str, QueryResult], range_: TimeRange, axis: Buckets) -> list[Tile]:
    """The tiles; the request rate is per minute over the Request rate chart's span (the mean of
    its points), not over the range's nominal length."""
    totals = results["totals"].frame.iloc[0]
    requests, failed = int(totals["requests"] or 0), int(totals["failed"] or 0)
    dependencies = results["dependencies"].frame
    calls, dependency_failures = int(dependencies["calls"].sum()), int(dependencies["failed"].sum())
    exceptions = int(results["exceptions"].frame["exceptions"].sum())
    since = axis.starts[0].strftime("%Y-%m-%d %H:%M UTC")
    return [
        Tile("Requests", f"{requests:,}", f"requests in the {range_.label.lower()}"),
        Tile("Request rate", f"{per_minute(requests / axis.minutes)}/min",
             f"requests per minute, averaged over the {axis.minutes:,.0f} minutes since {since} "
             f"({len(axis.starts)} buckets of {range_.bucket}): the mean of the Request rate chart"),
        Tile("Avg response", _ms(totals["avg"]), "mean server response time"),
        Tile("p95 response", _ms(totals["p95"]), "95% of requests were faster than this"),
        Tile("p99 response", _ms(totals["p99"]), "99% of requests were faster than this"),
        Tile("Failed requests", f"{failed:,}", "requests with success == false"),
        Tile("Availability", f"{100.0 * (requests - failed) / requests:.1f}%" if requests else "–", "share of successful requests"),
        Tile("Dependency calls", f"{calls:,}", f"{dependency_failures:,} failed"),
        Tile("Dependency failures", f"{dependency_failures:,}", "outgoing calls with success == false"),
        Tile("Exceptions", f"{exceptions:,}", "exceptions raised"),
    ]


def _ms(value) -> str:
    return "–" if value is None or pd.isna(value) else f"{value:,.1f} ms"

