"""What live metrics hold in memory: the last minutes of per-second aggregates per role instance,
the instances' health (last item, CPU and memory), and the streams that are watching, each with
its own samples. On a store shared by N collectors, the other collectors' seconds, instances and
failure samples are merged in as live/sharing.py reads them (`add_remote`, `add_remote_sample`),
and a stream shows a second once they are in (`shown_through`).

Nothing here is stored: live metrics are about now, and a restart starts them afresh (the stored
telemetry is what KQL and the application map read). Everything is bounded: HORIZON_S seconds of
at most MAX_KEYS_PER_SECOND role instances each, MAX_INSTANCES instances, MAX_SUBSCRIPTIONS streams
of SAMPLES_KEPT samples each.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from collector.store.schema import SERVICE_COLUMN
from live.aggregates import Key, Second
from live.condition import FAILURES, Condition

HORIZON_S = 600
MAX_INSTANCES = 2_000
MAX_KEYS_PER_SECOND = 100
"""Role instances kept apart in one second; beyond, a service's others are counted together under
OTHER (the seconds are what memory grows with: HORIZON_S of them)."""
OTHER = "(other)"
MAX_SUBSCRIPTIONS = 200
SAMPLES_KEPT = 200
SAMPLES_PER_BATCH = 10
"""At most this many samples per table a stream takes from one drained batch: the stream shows
examples, and at 20,000 failures a second it must not copy them all."""
IDLE_S = 30.0
"""A stream nobody has read for this long is forgotten."""
STALE_S = 10.0
"""An instance not heard from for this long is no longer healthy."""
MAX_WAIT_S = 2
"""How much later than its own seconds a collector shows a second while the others' are not in."""
SAMPLE_COLUMNS = ("timestamp", "itemType", "cloud_RoleName", "cloud_RoleInstance", "name", "resultCode",
                  "duration", "success", "target", "type", "data", "url", "message", "problemId",
                  "severityLevel", "operation_Id", "operation_Name", "id")


@dataclass
class Instance:
    last_seen: float = 0.0
    cpu_percent: float | None = None
    memory_bytes: int | None = None
    processes: list[dict] = field(default_factory=list)
    reported: float = 0.0  # when CPU and memory last arrived

    def to_json(self, key: Key, now: float) -> dict:
        heard = max(self.last_seen, self.reported)
        return {"role": key[1], "instance": key[2], "lastSeen": _iso(heard) if heard else None,
                "secondsSinceSeen": round(now - heard, 1) if heard else None,
                "healthy": bool(heard) and now - heard <= STALE_S,
                "cpuPercent": None if self.cpu_percent is None else round(self.cpu_percent, 1),
                "memoryBytes": self.memory_bytes, "processes": self.processes}


@dataclass(eq=False)
class Subscription:
    """One watcher's view: its filter, its matches per second and its samples (numbered, so each
    reader takes only what it has not seen)."""

    service: str
    role: str | None
    instance: str | None
    condition: Condition
    matched: dict[int, int] = field(default_factory=dict)
    samples: deque = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))
    touched: float = field(default_factory=time.monotonic)
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def samples_table(self, table_name: str, columns: set[str]) -> bool:
        """Whether rows of this table (with these columns) can match: it has the condition's columns
        (exceptions are always sampled by a stream of failures)."""
        return self.condition.columns <= columns or (self.condition is FAILURES and table_name == "exceptions")

    def take(self, second: int, table_name: str, table: pa.Table, in_service: pa.ChunkedArray) -> None:
        """Count the rows of `table` this stream matches and keep the first few as samples;
        `in_service` says which rows are its service's. Only the sampled rows' sample columns are
        copied (filtering a whole batch copies every column: milliseconds)."""
        mask = in_service
        for column, wanted in (("cloud_RoleName", self.role), ("cloud_RoleInstance", self.instance)):
            if wanted is not None:
                mask = pc.and_(mask, pc.fill_null(pc.equal(table.column(column), wanted), False))
        if not (self.condition is FAILURES and table_name == "exceptions"):
            mask = pc.and_(mask, self.condition.mask(table))
        matched = pc.sum(mask).as_py() or 0
        if not matched:
            return
        self.matched[second] = self.matched.get(second, 0) + matched
        present = set(table.schema.names)
        rows = table.select([name for name in SAMPLE_COLUMNS if name in present])
        first = pc.indices_nonzero(mask).slice(0, SAMPLES_PER_BATCH)
        for row in rows.take(first).to_pylist():
            self.samples.append((next(self._numbers), second, as_sample(table_name, row)))

    def add_sample(self, second: int, sample: dict) -> None:
        """A sample another collector took (failures only: see live/sharing.py)."""
        self.samples.append((next(self._numbers), second, sample))

    def samples_after(self, number: int, through: int) -> list[tuple[int, dict]]:
        """The samples numbered above `number` that arrived by second `through`: a sample goes out
        with the second that counts it, not before."""
        return [(n, sample) for n, second, sample in list(self.samples) if n > number and second <= through]


class LiveState:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[int, dict[Key, Second]] = {}
        self._instances: dict[Key, Instance] = {}
        self._subscriptions: dict[tuple, Subscription] = {}
        self.drained_through = int(time.time()) - 1
        """The last second whose items are all counted here."""
        self._remote: dict[int, dict[Key, Second]] = {}
        self._remote_instances: dict[Key, Instance] = {}
        self.peers_through: int | None = None
        """The last second every other live collector's counts are merged through; None when this
        collector is the only one (the DuckDB store)."""
        self.remote_watched: set[str] = set()
        """The services watched through other collectors."""

    @property
    def shown_through(self) -> int:
        """The last second a stream shows: counted here and merged from the others, or at most
        MAX_WAIT_S later than counted here."""
        if self.peers_through is None:
            return self.drained_through
        return max(min(self.drained_through, self.peers_through), self.drained_through - MAX_WAIT_S)

    # --- writing (the intake thread, and reports from wrappers and SDKs) ---

    def add_seconds(self, second: int, seconds: Mapping[Key, Second], now: float) -> None:
        with self._lock:
            bucket = self._seconds.setdefault(second, {})
            for key, value in seconds.items():
                if key not in bucket and len(bucket) >= MAX_KEYS_PER_SECOND:
                    key = (key[0], OTHER, OTHER)  # bounded memory whatever roles and instances senders name
                bucket.setdefault(key, Second()).merge(value)
                instance = self._instance(key)
                if instance is not None:
                    instance.last_seen = now

    def record_process(self, key: Key, cpu_percent: float, memory_bytes: int, processes: list[dict]) -> None:
        """CPU and memory an instance reported itself (the wrapper each second, or a QuickPulse SDK)."""
        now = time.time()
        with self._lock:
            instance = self._instance(key)
            if instance is None:
                return
            instance.cpu_percent, instance.memory_bytes = cpu_percent, memory_bytes
            instance.processes, instance.reported = processes, now
            second = self._seconds.setdefault(int(now), {}).setdefault(key, Second())
            second.cpu_percent, second.memory_bytes = cpu_percent, memory_bytes

    def sample(self, second: int, tables: Mapping[str, pa.Table]) -> None:
        """Offer a batch to each stream: it keeps the rows its filter matches."""
        with self._lock:
            subscriptions = list(self._subscriptions.values())
        for name, table in tables.items():
            in_service: dict[str, pa.ChunkedArray] = {}
            columns = set(table.schema.names)
            for subscription in subscriptions:
                if not table.num_rows or not subscription.samples_table(name, columns):
                    continue
                if subscription.service not in in_service:
                    in_service[subscription.service] = pc.fill_null(
                        pc.equal(table.column(SERVICE_COLUMN), subscription.service), False)
                subscription.take(second, name, table, in_service[subscription.service])

    def finish_drain(self, through: int) -> None:
        with self._lock:
            self.drained_through = max(self.drained_through, through)
            for seconds in (self._seconds, self._remote):
                for old in [s for s in seconds if s < through - HORIZON_S]:
                    del seconds[old]
            idle = time.monotonic() - IDLE_S
            for name, subscription in list(self._subscriptions.items()):
                if subscription.touched < idle:
                    del self._subscriptions[name]
                else:
                    for old in [s for s in subscription.matched if s < through - HORIZON_S]:
                        del subscription.matched[old]

    def local_seconds(self, first: int, last: int) -> list[tuple[int, Key, Second]]:
        """The seconds counted here from `first` to `last` (complete ones: nothing adds to them)."""
        with self._lock:
            return [(second, key, value) for second in range(first, last + 1)
                    for key, value in self._seconds.get(second, {}).items()]

    def add_remote(self, seconds: list[tuple[int, Key, Second]]) -> None:
        """Seconds other collectors counted (each once): merged into what streams show, and the
        instances they name heard from then."""
        with self._lock:
            for second, key, value in seconds:
                bucket = self._remote.setdefault(second, {})
                if key not in bucket and len(bucket) >= MAX_KEYS_PER_SECOND:
                    key = (key[0], OTHER, OTHER)
                bucket.setdefault(key, Second()).merge(value)
                instance = self._remote_instances.get(key)
                if instance is None and len(self._remote_instances) < MAX_INSTANCES:
                    instance = self._remote_instances[key] = Instance()
                if instance is None:
                    continue
                instance.last_seen = max(instance.last_seen, second + 1.0)
                if value.cpu_percent is not None and second + 1.0 >= instance.reported:
                    instance.cpu_percent, instance.memory_bytes = value.cpu_percent, value.memory_bytes
                    instance.reported = second + 1.0

    def clear_remote(self) -> None:
        """Forget the other collectors' seconds (nobody watches here: they are read afresh later)."""
        with self._lock:
            self._remote.clear()
            self._remote_instances.clear()

    def add_remote_sample(self, second: int, service: str, sample: dict) -> None:
        """A failure another collector sampled, to the failure streams watching its instance."""
        with self._lock:
            subscriptions = [s for s in self._subscriptions.values() if s.condition is FAILURES]
        key = (service, sample.get("cloud_RoleName") or "", sample.get("cloud_RoleInstance") or "")
        for subscription in subscriptions:
            if _watched(subscription, key):
                subscription.add_sample(second, sample)

    def _instance(self, key: Key) -> Instance | None:
        instance = self._instances.get(key)
        if instance is None and len(self._instances) < MAX_INSTANCES:
            instance = self._instances[key] = Instance()
        return instance

    # --- reading (the routes) ---

    def subscribe(self, service: str, role: str | None, instance: str | None, condition: Condition) -> Subscription:
        """The stream with this filter (a new one if none): LookupError when too many are open."""
        name = (service, role, instance, condition.text)
        with self._lock:
            subscription = self._subscriptions.get(name)
            if subscription is None:
                if len(self._subscriptions) >= MAX_SUBSCRIPTIONS:
                    raise LookupError(f"{MAX_SUBSCRIPTIONS} live streams are open; try again later")
                subscription = self._subscriptions[name] = Subscription(service, role, instance, condition)
            subscription.touched = time.monotonic()
            return subscription

    def seconds(self, subscription: Subscription, first: int, last: int) -> list[dict]:
        """Each second from `first` to `last`, merged over the instances the stream watches."""
        out = []
        with self._lock:
            for second in range(first, last + 1):
                merged = Second()
                for seconds in (self._seconds, self._remote):
                    for key, value in seconds.get(second, {}).items():
                        if _watched(subscription, key):
                            merged.merge(value)
                entry = {"time": _iso(second), **merged.to_json()}
                if subscription.condition is not FAILURES:
                    entry["matched"] = subscription.matched.get(second, 0)
                out.append(entry)
        return out

    def instances(self, subscription: Subscription) -> list[dict]:
        now = time.time()
        with self._lock:
            latest = dict(self._remote_instances)
            for key, instance in self._instances.items():  # heard here and elsewhere: the latest news
                other = latest.get(key)
                if other is None or max(instance.last_seen, instance.reported) >= max(other.last_seen, other.reported):
                    latest[key] = instance
            return [instance.to_json(key, now) for key, instance in sorted(latest.items())
                    if _watched(subscription, key)]

    def condition_columns(self) -> set[str]:
        """The columns the open streams' conditions read."""
        with self._lock:
            return {column for s in self._subscriptions.values() for column in s.condition.columns}

    def services_watched(self) -> set[str]:
        """The services watched through this collector or (on a shared store) any other."""
        return self.watched_here() | self.remote_watched

    def watched_here(self) -> set[str]:
        with self._lock:
            return {subscription.service for subscription in self._subscriptions.values()}


def _watched(subscription: Subscription, key: Key) -> bool:
    return key[0] == subscription.service and subscription.role in (None, key[1]) \
        and subscription.instance in (None, key[2])


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{int(seconds % 1 * 1000):03d}Z"


def as_sample(table_name: str, row: dict) -> dict:
    """A row of `table_name` as a stream's sample."""
    return {"table": table_name, **row, "timestamp": _iso_value(row.get("timestamp"))}


def _iso_value(value: object) -> object:
    isoformat = getattr(value, "isoformat", None)
    return isoformat() + "Z" if isoformat is not None else value
