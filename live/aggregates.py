"""One second of an endpoint's traffic, as live metrics show it, and how a batch of accepted rows
becomes those seconds.

A batch is aggregated column-wise over the Arrow rows ingestion already built: the key columns are
dictionary-encoded once, then numpy counts per key and bin (bincount); the Python loop runs over
the keys, a few role instances, never over the items (~0.3 µs per item). Durations are
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
        keys, codes = _key_codes(exceptions)
        for key, count in zip(keys, np.bincount(codes, minlength=len(keys)).tolist()):
            seconds.setdefault(key, Second()).exceptions += count
    return seconds


def _key_codes(table: pa.Table) -> tuple[list[Key], np.ndarray]:
    """The distinct keys of a table's rows, and each row's index among them. One dictionary
    encoding of the joined key columns: the rows then go to numpy as small integers."""
    joined = pc.binary_join_element_wise(*(pc.fill_null(table.column(name), "") for name in KEY_COLUMNS), "\x1f")
    encoded = pc.dictionary_encode(joined.combine_chunks() if isinstance(joined, pa.ChunkedArray) else joined)
    keys = [tuple(text.split("\x1f", 2)) for text in encoded.dictionary.to_pylist()]
    return keys, encoded.indices.to_numpy(zero_copy_only=False)


def _durations(table: pa.Table) -> Iterable[tuple[Key, Durations]]:
    keys, codes = _key_codes(table)
    duration = np.nan_to_num(table.column("duration").to_numpy(zero_copy_only=False).astype(np.float64))
    failed = pc.invert(pc.fill_null(table.column("success"), True)).to_numpy(zero_copy_only=False)
    width = MAX_BIN + 1
    histogram = np.bincount(codes * width + duration_bins(duration), minlength=len(keys) * width)
    failures = np.bincount(codes, weights=failed.astype(np.float64), minlength=len(keys))
    totals = np.bincount(codes, weights=duration, minlength=len(keys))
    for index, key in enumerate(keys):
        row = histogram[index * width:(index + 1) * width]
        used = np.nonzero(row)[0]
        yield key, Durations(int(row.sum()), int(failures[index]), float(totals[index]),
                             Counter(dict(zip(used.tolist(), row[used].tolist()))))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
