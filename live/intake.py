"""From ingestion to live metrics: the observer the pipeline calls, and the thread that turns what
it kept into seconds and samples.

The observer runs on the collector's event loop for every accepted batch, so it only notes the
arrival second and keeps a reference to the batch's Arrow tables (already built for the store):
an append to a deque. Every DRAIN_INTERVAL_S the intake thread takes all batches that arrived,
joins each second's tables (the columns live metrics read, made contiguous) and aggregates them
(aggregates.py), then lets the watching streams sample them. A second is complete once a drain that started after it ends, so a
stream shows an item at most about one second plus one drain after it arrived.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping

import pyarrow as pa

from live.aggregates import KEY_COLUMNS, aggregate
from live.state import SAMPLE_COLUMNS, LiveState

log = logging.getLogger(__name__)

DRAIN_INTERVAL_S = 0.1
LIVE_TABLES = ("requests", "dependencies", "exceptions", "traces")
MAX_WAITING = 100_000
"""Batches held between drains at most; beyond, the oldest are dropped from live metrics (never
from the store): live metrics fall behind rather than take the collector's memory."""


class Intake:
    def __init__(self, state: LiveState, on_second: Callable[[int, dict[str, pa.Table]], None] | None = None):
        self.state = state
        self._on_second = on_second
        """Also sees each second's joined tables (live/sharing.py samples failures to share)."""
        self._waiting: deque[tuple[int, Mapping[str, pa.Table]]] = deque(maxlen=MAX_WAITING)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="live-intake", daemon=True)
        self.busy_s = 0.0
        """CPU seconds the intake thread spent counting and sampling (what live metrics cost)."""
        self.items = 0
        self.drains = 0

    def observe(self, tables: Mapping[str, pa.Table]) -> None:
        """The pipeline's observer (collector/extensions.py IngestObserver): note, do not work."""
        self._waiting.append((int(time.time()), tables))

    def start(self) -> Intake:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def status(self) -> dict:
        return {"items": self.items, "drains": self.drains, "busySeconds": round(self.busy_s, 3),
                "microsecondsPerItem": round(self.busy_s / self.items * 1e6, 3) if self.items else None,
                "waitingBatches": len(self._waiting), "drainedThrough": self.state.drained_through}

    def drain(self) -> None:
        """Count and sample every batch that arrived before now."""
        cpu = time.thread_time()
        try:
            self._drain()
        finally:
            self.busy_s += time.thread_time() - cpu
            self.drains += 1

    def _drain(self) -> None:
        started = time.time()
        by_second: dict[int, dict[str, list[pa.Table]]] = defaultdict(lambda: defaultdict(list))
        while self._waiting:
            second, tables = self._waiting.popleft()
            self.items += sum(table.num_rows for table in tables.values())
            for name in LIVE_TABLES:
                table = tables.get(name)
                if table is not None and table.num_rows:
                    by_second[second][name].append(table)
        wanted = set(KEY_COLUMNS) | {"duration", "success"} | set(SAMPLE_COLUMNS) | self.state.condition_columns()
        for second, tables in sorted(by_second.items()):
            joined = {name: _joined(parts, wanted) for name, parts in tables.items()}
            self.state.add_seconds(second, aggregate(joined), started)
            self.state.sample(second, joined)
            if self._on_second is not None:
                self._on_second(second, joined)
        self.state.finish_drain(int(started) - 1)

    def _run(self) -> None:
        while not self._stop.wait(DRAIN_INTERVAL_S):
            try:
                self.drain()
            except Exception:  # live metrics must outlive a batch they cannot read
                log.exception("live metrics could not count a batch")


def _joined(parts: list[pa.Table], wanted: set[str]) -> pa.Table:
    """One contiguous table of the `wanted` columns of a second's batches of one table. Kernels on
    a few contiguous columns cost a fraction of the same on dozens of columns in many chunks, and
    a batch holds only the columns its items had (the others are absent, not null), which the
    concatenation fills with nulls."""
    slim = [part.select([name for name in part.schema.names if name in wanted]) for part in parts]
    try:
        joined = pa.concat_tables(slim, promote_options="default")
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        joined = pa.concat_tables(slim, promote_options="permissive")
    return joined.combine_chunks()
