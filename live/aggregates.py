"""One second of an endpoint's traffic, as live metrics show it, and how a batch of accepted rows
becomes those seconds.

A batch is aggregated column-wise (Arrow group-by over the rows ingestion already built): the
Python loop runs over the groups, a few per role instance, never over the items. Durations are
kept as a sparse histogram of 5%-wide logarithmic bins, so that seconds and instances merge
exactly and percentiles are read to within 5% without keeping the items.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from collector.store.schema import SERVICE_COLUMN

Key = tuple[str, str, str]
"""(service, cloud_RoleName, cloud_RoleInstance): what live metrics are kept per."""

KEY_COLUMNS = (SERVICE_COLUMN, "cloud_RoleName", "cloud_RoleInstance")
BIN_RATIO = 1.05
_LOG_RATIO = math.log(BIN_RATIO)
MAX_BIN = 400  # 1.05**400 ms is about 9 years: every real duration has a bin


@dataclass
class Durations:
    """Calls, failures and a duration histogram: a second of requests, or of dependencies."""

    count: int = 0
    failed: int = 0
    total_ms: float = 0.0
    bins: Counter = field(default_factory=Counter)

    def merge(self, other: Durations) -> None:
        self.count += other.count
        self.failed += other.failed
        self.total_ms += other.total_ms
        self.bins.update(other.bins)

    def percentile(self, q: float) -> float | None:
        """The q-th percentile (0-100), the geometric middle of its bin; None without calls."""
        if not self.bins:
            return None
        rank = q / 100 * sum(self.bins.values())
        seen = 0
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return bin_middle(index)
        return bin_middle(max(self.bins))

    def to_json(self) -> dict:
        average = self.total_ms / self.count if self.count else None
        return {"count": self.count, "failed": self.failed, "avgMs": _round(average),
                "p50Ms": _round(self.percentile(50)), "p95Ms": _round(self.percentile(95)),
                "p99Ms": _round(self.percentile(99))}


@dataclass
class Second:
    """What one role instance did in one second (or a merge of several)."""

    requests: Durations = field(default_factory=Durations)
    dependencies: Durations = field(default_factory=Durations)
    exceptions: int = 0
    cpu_percent: float | None = None
    memory_bytes: int | None = None

    def merge(self, other: Second) -> None:
        self.requests.merge(other.requests)
        self.dependencies.merge(other.dependencies)
        self.exceptions += other.exceptions
        if other.cpu_percent is not None:
            self.cpu_percent = (self.cpu_percent or 0.0) + other.cpu_percent
        if other.memory_bytes is not None:
            self.memory_bytes = (self.memory_bytes or 0) + other.memory_bytes

    def to_json(self) -> dict:
        return {"requests": self.requests.to_json(), "dependencies": self.dependencies.to_json(),
                "exceptions": self.exceptions, "cpuPercent": _round(self.cpu_percent),
                "memoryBytes": self.memory_bytes}


def bin_middle(index: int) -> float:
    return math.sqrt(BIN_RATIO ** index * BIN_RATIO ** (index + 1)) - 1


def duration_bins(durations: np.ndarray) -> np.ndarray:
    """The histogram bin of each duration (ms): log(1 + d) in steps of 5%."""
    clipped = np.maximum(np.nan_to_num(durations, nan=0.0), 0.0)
    return np.minimum(np.log1p(clipped) / _LOG_RATIO, MAX_BIN).astype(np.int32)


def aggregate(tables: Mapping[str, pa.Table]) -> dict[Key, Second]:
    """The seconds of one batch of accepted rows, per role instance."""
    seconds: dict[Key, Second] = {}
    for name in ("requests", "dependencies"):
        table = tables.get(name)
        if table is not None and table.num_rows:
            for key, durations in _durations(table):
                target = seconds.setdefault(key, Second())
                (target.requests if name == "requests" else target.dependencies).merge(durations)
    exceptions = tables.get("exceptions")
    if exceptions is not None and exceptions.num_rows:
        counted = _keys(exceptions).group_by(list(KEY_COLUMNS)).aggregate([(SERVICE_COLUMN, "count")])
        for key, count in zip(_key_tuples(counted), counted.column(f"{SERVICE_COLUMN}_count").to_pylist()):
            seconds.setdefault(key, Second()).exceptions += count
    return seconds


def _keys(table: pa.Table) -> pa.Table:
    """The key columns, nulls as ''."""
    return pa.table({name: pc.fill_null(table.column(name), "") for name in KEY_COLUMNS})


def _key_tuples(grouped: pa.Table) -> Iterable[Key]:
    return zip(*(grouped.column(name).to_pylist() for name in KEY_COLUMNS))


def _durations(table: pa.Table) -> Iterable[tuple[Key, Durations]]:
    duration = table.column("duration").to_numpy(zero_copy_only=False).astype(np.float64)
    failed = pc.cast(pc.invert(pc.fill_null(table.column("success"), True)), pa.int32())
    grouped = _keys(table).append_column("bin", pa.array(duration_bins(duration))) \
        .append_column("failed", failed).append_column("duration", pa.array(duration)) \
        .group_by([*KEY_COLUMNS, "bin"]) \
        .aggregate([("failed", "sum"), ("duration", "sum"), ("bin", "count")])
    found: dict[Key, Durations] = {}
    columns = [grouped.column(name).to_pylist() for name in ("bin", "failed_sum", "duration_sum", "bin_count")]
    for key, index, failures, total, count in zip(_key_tuples(grouped), *columns):
        durations = found.setdefault(key, Durations())
        durations.count += count
        durations.failed += failures or 0
        durations.total_ms += total or 0.0
        durations.bins[index] += count
    return found.items()


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
