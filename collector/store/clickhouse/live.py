"""Live metrics shared by N collectors: the short-lived ClickHouse table each collector publishes
its completed seconds to, and reads the others' from (live/sharing.py does the merging).

Each collector counts the items it receives (live/intake.py); a live stream served by one collector
must show them all. Live seconds merge by addition (counts, failures, duration sums and the
log-histograms of durations, per service, role and instance), so each collector publishes, about
once a second, one insert of rows of these kinds into `live_share`:
- `second`: one row per (second, service, role, instance) it counted, for the seconds it completed
  since its last publish (a second is complete once every batch that arrived in it is counted);
- `sample`: a bounded number of failed requests, dependencies and exceptions of those seconds
  (the default live stream shows them), the row as JSON;
- `mark`: the last second it has completed and published: a reader shows a second once every live
  collector's mark has passed it (or at most live/sharing.MAX_WAIT_S later than its own seconds);
- `watch`: each service someone watches through it, so that every collector knows which services
  are watched (QuickPulse SDKs are told to stream only then).
One insert per collector per second, small (a few hundred rows at most), makes one part each;
nothing is updated. Rows live TTL_MINUTES (live metrics look ten minutes back at most): the table
is partitioned by hour and `ttl_only_drop_parts` drops whole parts, so expiry costs no rewrite.
On a cluster the table is replicated to every server (like control.py's tables, one Keeper path
without `{shard}`): every collector reads every row; checked only on paper.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import orjson
import pyarrow as pa

from collector.store.clickhouse import control

TABLE = "live_share"
TTL_MINUTES = 15
ALIVE_S = 5
"""A collector whose last mark is older than this (by the reader's clock) is not waited for."""

_COLUMNS = (
    "kind LowCardinality(String), collector String, second UInt32, service String, "
    "role LowCardinality(String), instance LowCardinality(String), "
    "requests UInt64, requests_failed UInt64, requests_ms Float64, "
    "requests_bins Array(UInt16), requests_counts Array(UInt64), "
    "dependencies UInt64, dependencies_failed UInt64, dependencies_ms Float64, "
    "dependencies_bins Array(UInt16), dependencies_counts Array(UInt64), "
    "exceptions UInt64, cpu_percent Nullable(Float64), memory_bytes Nullable(Int64), sample String"
)
_ENGINE_REST = (f"PARTITION BY intDiv(second, 3600) ORDER BY (service, second, collector) "
                f"TTL toDateTime(second) + INTERVAL {TTL_MINUTES} MINUTE SETTINGS ttl_only_drop_parts = 1")
SPEC: control.TableSpec = (_COLUMNS, "MergeTree", "", _ENGINE_REST)
"""The table's declaration, registered in tables.py."""


@dataclass(frozen=True)
class Calls:
    """A second of requests or dependencies: count, failures, duration sum (ms) and histogram
    (live/aggregates.py's bins -> count)."""

    count: int = 0
    failed: int = 0
    total_ms: float = 0.0
    bins: dict[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class SharedSecond:
    second: int
    service: str
    role: str
    instance: str
    requests: Calls
    dependencies: Calls
    exceptions: int = 0
    cpu_percent: float | None = None
    memory_bytes: int | None = None


@dataclass(frozen=True)
class SharedSample:
    second: int
    service: str
    sample: dict


@dataclass(frozen=True)
class Shared:
    """What the other collectors published, as read at one moment."""

    seconds: list[tuple[str, SharedSecond]]
    """(collector, second)"""
    samples: list[tuple[str, SharedSample]]


@dataclass(frozen=True)
class Peers:
    through: dict[str, int]
    """Each live collector (but this one) -> the last second it published."""
    watched: set[str]
    """The services watched through any collector (recently)."""


class LiveShare:
    """This collector's side of `live_share`: `publish` its seconds, read the others' (`peers`, `read`)."""

    def __init__(self, connection: control.Connection, collector: str) -> None:
        self._connection = connection
        self.collector = collector
        self._table = control.table(connection, TABLE)

    def publish(self, seconds: Sequence[SharedSecond], samples: Sequence[SharedSample], through: int,
                watched: Iterable[str]) -> None:
        """One insert: the seconds, their samples, this collector's mark at `through` and the
        services watched through it."""
        rows = [_second_row(s) for s in seconds]
        rows += [_row("sample", s.second, s.service, sample=orjson.dumps(s.sample, default=str).decode())
                 for s in samples]
        rows.append(_row("mark", through, ""))
        rows += [_row("watch", through, service) for service in sorted(set(watched))]
        table = pa.Table.from_pylist([{**row, "collector": self.collector} for row in rows], schema=_SCHEMA)
        self._connection.client().insert_arrow(self._table, table, settings=control.write_settings(self._connection))

    def peers(self, now: int) -> Peers:
        """The other collectors' marks and every collector's watches of the last ALIVE_S seconds."""
        rows = self._connection.client().query(
            f"SELECT kind, collector, service, max(second) FROM {self._table} "
            "WHERE kind IN ('mark', 'watch') AND second >= {since:UInt32} GROUP BY kind, collector, service",
            parameters={"since": max(now - ALIVE_S, 0)}, settings=control.read_settings(self._connection)).result_rows
        return Peers(through={collector: int(second) for kind, collector, _, second in rows
                              if kind == "mark" and collector != self.collector},
                     watched={service for kind, _, service, _ in rows if kind == "watch"})

    def read(self, after: int, through: int) -> Shared:
        """The other collectors' seconds and samples from `after` (excluded) to `through` (included),
        of every service: a collector publishes MAX_KEYS_PER_SECOND rows of seconds at most
        (live/state.py), and samples of watched services only."""
        result = self._connection.client().query(
            f"SELECT * FROM {self._table} WHERE kind IN ('second', 'sample') "
            "AND second > {after:UInt32} AND second <= {through:UInt32} AND collector != {me:String}",
            parameters={"after": max(after, 0), "through": max(through, 0), "me": self.collector},
            settings=control.read_settings(self._connection))
        rows = [dict(zip(result.column_names, row, strict=True)) for row in result.result_rows]
        return Shared(seconds=[(row["collector"], _shared_second(row)) for row in rows if row["kind"] == "second"],
                      samples=[(row["collector"], SharedSample(int(row["second"]), row["service"], orjson.loads(row["sample"])))
                               for row in rows if row["kind"] == "sample"])


_SCHEMA = pa.schema([
    ("kind", pa.string()), ("collector", pa.string()), ("second", pa.uint32()), ("service", pa.string()),
    ("role", pa.string()), ("instance", pa.string()),
    *((f"{name}{suffix}", kind) for name in ("requests", "dependencies") for suffix, kind in (
        ("", pa.uint64()), ("_failed", pa.uint64()), ("_ms", pa.float64()),
        ("_bins", pa.list_(pa.uint16())), ("_counts", pa.list_(pa.uint64())))),
    ("exceptions", pa.uint64()), ("cpu_percent", pa.float64()), ("memory_bytes", pa.int64()), ("sample", pa.string()),
])


def _row(kind: str, second: int, service: str, role: str = "", instance: str = "", sample: str = "") -> dict:
    row: dict = {"kind": kind, "second": second, "service": service, "role": role, "instance": instance,
                 "exceptions": 0, "cpu_percent": None, "memory_bytes": None, "sample": sample}
    for name in ("requests", "dependencies"):
        row.update({name: 0, f"{name}_failed": 0, f"{name}_ms": 0.0, f"{name}_bins": [], f"{name}_counts": []})
    return row


def _second_row(second: SharedSecond) -> dict:
    row = _row("second", second.second, second.service, second.role, second.instance)
    for name, calls in (("requests", second.requests), ("dependencies", second.dependencies)):
        row.update({name: calls.count, f"{name}_failed": calls.failed, f"{name}_ms": calls.total_ms,
                    f"{name}_bins": list(calls.bins), f"{name}_counts": list(calls.bins.values())})
    row.update(exceptions=second.exceptions, cpu_percent=second.cpu_percent, memory_bytes=second.memory_bytes)
    return row


def _shared_second(row: dict) -> SharedSecond:
    def calls(name: str) -> Calls:
        return Calls(int(row[name]), int(row[f"{name}_failed"]), float(row[f"{name}_ms"]),
                     dict(zip(map(int, row[f"{name}_bins"]), map(int, row[f"{name}_counts"]), strict=True)))

    return SharedSecond(int(row["second"]), row["service"], row["role"], row["instance"], calls("requests"),
                        calls("dependencies"), int(row["exceptions"]), row["cpu_percent"],
                        None if row["memory_bytes"] is None else int(row["memory_bytes"]))
