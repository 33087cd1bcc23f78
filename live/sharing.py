"""Live metrics merged across the collectors of one ClickHouse store.

Each collector counts what it receives (intake.py), so on a store shared by N collectors a stream
served by one of them would show its share only. Live seconds add up (counts, failures, duration
sums, and the durations' log-histograms, aggregates.py, merge exactly), so every TICK_S this
thread, on every collector:
1. publishes the seconds it completed since its last publish, a few failure samples of them
   (SAMPLES_PER_SECOND per table and service, of the services watched anywhere) and its mark (the
   last second it completed) in one insert into the store's short-lived shared table
   (collector/store/clickhouse/live.py says how it is laid out);
2. while a stream is open here, reads the other collectors' marks, seconds and samples published
   since the last read and merges them into the state (LiveState.add_remote), each collector's
   seconds once (a cursor per collector), from HORIZON_S back when the first stream opens (the
   samples from then on).
A stream shows a second once every live collector's mark has passed it, at most MAX_WAIT_S later
than this collector's own count (LiveState.shown_through): one publish and one read (TICK_S each)
plus the insert and the query, about a second with a nearby ClickHouse. A collector that published
no mark for ALIVE_S (store live.py) is no longer waited for; what it publishes later for seconds already shown
still reaches the next answers' earlier seconds (`GET /api/live`), not the stream's past events.

What is merged: requests and dependencies (counts, failures, durations), exceptions, each
instance's CPU and memory and when it was last heard from, failure samples, and which services are
watched (so a QuickPulse SDK sending to one collector streams while a user watches on another).
What is not: streams with a `condition=` count their matches, and take samples, from the items
their own collector received only (the others do not know the condition).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from collector.store.clickhouse.live import Calls, LiveShare, SharedSample, SharedSecond
from collector.store.schema import SERVICE_COLUMN
from live.aggregates import Durations, Key, Second
from live.state import HORIZON_S, SAMPLE_COLUMNS, LiveState, as_sample

log = logging.getLogger(__name__)

TICK_S = 0.25
IDLE_READ_S = 1.0
"""While nobody watches here, the others' marks and watches are read this often only."""
SAMPLES_PER_SECOND = 10
"""Failure samples shared per table, service and second."""
MAX_PENDING_SAMPLES = 5_000
"""Samples waiting for a publish at most (the newest are kept while ClickHouse does not answer)."""
REPUBLISH_S = 60
"""After a failed publish, the seconds it retries reach this far back at most."""
NO_PEERS = 2**31


class Sharing:
    def __init__(self, state: LiveState, share: LiveShare, idle_read_s: float = IDLE_READ_S) -> None:
        self.state = state
        self._share = share
        self._idle_read_s = idle_read_s
        self._published = state.drained_through
        self._samples: list[SharedSample] = []
        self._samples_lock = threading.Lock()
        self._cursors: dict[str, int] = {}
        """Per other collector, the last second of its merged into the state (empty: none)."""
        self._merging_since = 0
        """When merging began (the first stream here): older samples are history, not news."""
        self._failing = False
        self._read_at = 0.0
        state.peers_through = 0  # nothing from the others yet: own seconds shown MAX_WAIT_S late
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-sharing", daemon=True)

    def start(self) -> Sharing:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def collect(self, second: int, tables: dict[str, pa.Table]) -> None:
        """The intake's hook: keep a few failures of the second to publish (watched services only)."""
        watched = self.state.services_watched()
        if not watched:
            return
        picked = []
        for name in ("requests", "dependencies", "exceptions"):
            table = tables.get(name)
            if table is None or not table.num_rows:
                continue
            if name != "exceptions":
                table = table.filter(pc.invert(pc.fill_null(table.column("success"), True)))
            for service in set(pc.unique(table.column(SERVICE_COLUMN)).to_pylist()) & watched:
                rows = table.filter(pc.fill_null(pc.equal(table.column(SERVICE_COLUMN), service), False))
                rows = rows.slice(0, SAMPLES_PER_SECOND).select([c for c in SAMPLE_COLUMNS if c in rows.schema.names])
                picked += [SharedSample(second, service, as_sample(name, row)) for row in rows.to_pylist()]
        if picked:
            with self._samples_lock:
                self._samples = (self._samples + picked)[-MAX_PENDING_SAMPLES:]

    def tick(self) -> None:
        self._publish()
        self._pull()

    def _run(self) -> None:
        while not self._stop.wait(TICK_S):
            try:
                self.tick()
                self._failing = False
            except Exception:  # live metrics go on with this collector's own counts
                if not self._failing:
                    log.exception("live metrics: the other collectors' seconds could not be shared")
                self._failing = True

    def _publish(self) -> None:
        through = self.state.drained_through
        if through <= self._published:
            return
        first = max(self._published + 1, through - REPUBLISH_S)
        seconds = [_shared(second, key, value) for second, key, value in self.state.local_seconds(first, through)]
        with self._samples_lock:
            samples = [s for s in self._samples if s.second <= through]
        self._share.publish(seconds, samples, through, self.state.watched_here())
        with self._samples_lock:
            self._samples = [s for s in self._samples if s.second > through]
        self._published = through

    def _pull(self) -> None:
        watching = bool(self.state.watched_here())
        if not watching and time.monotonic() - self._read_at < self._idle_read_s:
            return
        self._read_at = time.monotonic()
        peers = self._share.peers(int(time.time()))
        self.state.remote_watched = peers.watched
        if not watching:
            if self._cursors:  # nobody watches here: forget, and start from the horizon next time
                self._cursors = {}
                self.state.clear_remote()
            self.state.peers_through = min(peers.through.values(), default=NO_PEERS)
            return
        if peers.through:
            self._merge(peers.through)
        self.state.peers_through = min(peers.through.values(), default=NO_PEERS)

    def _merge(self, through: dict[str, int]) -> None:
        """Each live peer's seconds (and samples) after its cursor, up to its mark, into the state."""
        now = int(time.time())
        if not self._cursors:
            self._merging_since = now - 1
        start = now - HORIZON_S
        after = {collector: self._cursors.get(collector, start) for collector in through}
        shared = self._share.read(min(after.values()), max(through.values()))

        def new(collector: str, second: int) -> bool:
            return collector in through and after[collector] < second <= through[collector]

        self.state.add_remote([(s.second, (s.service, s.role, s.instance), _second(s))
                               for collector, s in shared.seconds if new(collector, s.second)])
        for collector, sample in shared.samples:
            if new(collector, sample.second) and sample.second >= self._merging_since:
                self.state.add_remote_sample(sample.second, sample.service, sample.sample)
        self._cursors.update(through)


def _shared(second: int, key: Key, value: Second) -> SharedSecond:
    def calls(durations: Durations) -> Calls:
        return Calls(durations.count, durations.failed, durations.total_ms, dict(durations.bins))

    return SharedSecond(second, *key, calls(value.requests), calls(value.dependencies), value.exceptions,
                        value.cpu_percent, value.memory_bytes)


def _second(shared: SharedSecond) -> Second:
    def durations(calls: Calls) -> Durations:
        return Durations(calls.count, calls.failed, calls.total_ms, Counter(calls.bins))

    return Second(durations(shared.requests), durations(shared.dependencies), shared.exceptions,
                  shared.cpu_percent, shared.memory_bytes)
