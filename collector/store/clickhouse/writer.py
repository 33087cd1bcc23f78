"""The ClickHouse writer: the single writer's contract (store/writer.py) with ClickHouse underneath.

What stays: `write(tables, stats, operation)` returns a future the ingestion path waits on; rows
beyond `max_pending_rows` are refused with Overloaded (503 + Retry-After); concurrent batches are
committed together (one INSERT per table for the whole group: ClickHouse, like DuckDB, pays per
insert, and many small parts would make it merge all day). The future resolves only after the
insert returned: inserts are synchronous (`async_insert=0`), on a cluster in the foreground through
the Distributed table with a quorum of replicas (see location.ClickHouseConnection.insert_settings).

What differs: control state (counters, service changes, console lines, ...) still lives in the
collector's local DuckDB this session, so a batch's `stats`, its `operation` and the `after_insert`
hooks run through the local DuckDB writer, after the ClickHouse insert returned, in one local
commit. A write without telemetry rows goes to the local writer directly. ClickHouse has no
transaction across tables, so a group that failed may have stored some tables; the whole group is
answered 503 and the SDKs resend, which may store those rows twice (at least once, never lost).

`_seq` without coordination. DuckDB's `_seq` comes from a sequence in the one file; N collectors
writing to one ClickHouse cannot share a sequence without a round trip per batch. Each writer makes
its own instead, a Snowflake-style 63-bit number:

    [ 42 bits: milliseconds since 2020-01-01 UTC ][ 12 bits: collector id ][ 9 bits: counter ]

A writer hands out consecutive "slots" (milliseconds x 512 + counter), starting each group at
max(now, last + 1): values are unique per collector (the slot never repeats, even if the clock
steps back), unique across collectors with distinct ids (INSIGHTS_COLLECTOR_ID, 0-4095; random
when unset, so a fleet should set them), and ordered by the time they were assigned, to the
millisecond, across collectors. A burst above 512 rows per millisecond borrows the next
milliseconds, so the value runs ahead of the clock, never behind it. 42 bits of milliseconds last
until 2159. Rows copied from a DuckDB store keep their small DuckDB `_seq`, below every value made
here.

What export's exactly-once needs from it. Export reads a service's rows in `_seq` order past a
checkpoint; it must never checkpoint past a `_seq` whose row is not yet visible. A writer assigns
`_seq` right before its insert and abandons an insert after INSERT_TIMEOUT_S (answering 503), so
every insert holding values below `horizon(now - lag)` has landed or failed once `lag` exceeds
INSERT_TIMEOUT_S plus the clock skew between collectors. Export therefore reads only
`_seq < horizon()` (HORIZON_LAG_S behind the wall clock): every row below it is final, and a
checkpoint at or below it never skips one. The cost is that export runs HORIZON_LAG_S behind.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor

import duckdb
import numpy as np
import pyarrow as pa

from collector.store.clickhouse.location import SEND_RECEIVE_TIMEOUT_S, ClickHouseConnection
from collector.store.clickhouse.schema import quote
from collector.store.schema import SEQ_COLUMN, TABLES
from collector.store.writer import Batch, Operation, Writer

log = logging.getLogger(__name__)

EPOCH_MS = 1_577_836_800_000
"""2020-01-01T00:00:00Z in milliseconds since the Unix epoch."""
ID_BITS = 12
COUNTER_BITS = 9
MAX_COLLECTOR_ID = (1 << ID_BITS) - 1
INSERT_TIMEOUT_S = SEND_RECEIVE_TIMEOUT_S
"""An insert that has not returned by then is abandoned (503; the SDK resends)."""
HORIZON_LAG_S = 60
"""How far behind the clock export reads: more than INSERT_TIMEOUT_S plus the collectors' clock skew."""


class SeqClock:
    """Hands out `_seq` values for one collector (see the module docstring for the layout)."""

    def __init__(self, collector_id: int | None = None, now_ms: Callable[[], int] | None = None):
        if collector_id is None:
            collector_id = random.SystemRandom().randrange(MAX_COLLECTOR_ID + 1)
        if not 0 <= collector_id <= MAX_COLLECTOR_ID:
            raise ValueError(f"the collector id must be from 0 to {MAX_COLLECTOR_ID}, not {collector_id}")
        self.collector_id = collector_id
        self._now_ms = now_ms or (lambda: time.time_ns() // 1_000_000)
        self._next_slot = 0
        self._lock = threading.Lock()

    def take(self, count: int) -> pa.Array:
        """`count` new values, increasing."""
        with self._lock:
            first = max((self._now_ms() - EPOCH_MS) << COUNTER_BITS, self._next_slot)
            self._next_slot = first + count
        slots = np.arange(first, first + count, dtype=np.int64)
        millis, counter = slots >> COUNTER_BITS, slots & ((1 << COUNTER_BITS) - 1)
        return pa.array((millis << (ID_BITS + COUNTER_BITS)) | (self.collector_id << COUNTER_BITS) | counter)


def horizon(lag_s: float = HORIZON_LAG_S, now_ms: int | None = None) -> int:
    """The `_seq` below which every insert has landed or failed: export reads only below it."""
    now = time.time_ns() // 1_000_000 if now_ms is None else now_ms
    return (int(now - lag_s * 1000) - EPOCH_MS) << (ID_BITS + COUNTER_BITS)


def seq_time_ms(seq: int) -> int:
    """When a `_seq` made here was assigned (Unix milliseconds)."""
    return (seq >> (ID_BITS + COUNTER_BITS)) + EPOCH_MS


class ClickHouseWriter(Writer):
    """Group commit into ClickHouse; stats, operations and hooks through `local` (see the module
    docstring). Reuses the DuckDB writer's queue, back-pressure and grouping; replaces the commit."""

    group_target_rows = 20_000
    group_wait_seconds = 0.2
    """Larger groups than DuckDB's: every insert makes a part in each day it touches, which
    ClickHouse then merges, and it asks for inserts of 10k+ rows, about one per second per table.
    The wait applies only while batches are being prepared, i.e. under load."""

    def __init__(self, connection: ClickHouseConnection, local: Writer, max_pending_rows: int,
                 collector_id: int | None = None):
        # The base class's fields, without its DuckDB connection or checkpoints.
        self._connection = connection
        self._local = local
        self.clock = SeqClock(collector_id)
        self.failed: Exception | None = None
        self.on_fatal: Callable[[Exception], None] = lambda error: None
        self.after_insert: list[Callable[[duckdb.DuckDBPyConnection, str, pa.Table], None]] = []
        self._queue: queue.SimpleQueue[tuple[Batch, Future] | None] = queue.SimpleQueue()
        self._pending_rows = 0
        self._expected = 0
        self._lock = threading.Lock()
        self._max_pending_rows = max_pending_rows
        self._reads = ThreadPoolExecutor(1, thread_name_prefix="clickhouse-held-items")
        self._thread = threading.Thread(target=self._run, name="clickhouse-writer", daemon=True)
        self._thread.start()

    def write(self, tables: Mapping[str, pa.Table] | None = None, stats: Counter | None = None,
              operation: Operation | None = None) -> Future:
        if not tables or not any(table.num_rows for table in tables.values()):
            return self._local.write(stats=stats, operation=operation)
        return super().write(tables, stats, operation)

    def held_item_ids(self, service: str, wanted: Mapping[str, list[str]]) -> Future:
        """As the DuckDB writer's, asked of ClickHouse (in a thread of its own: the caller is the event
        loop). Imports take turns within a collector; two collectors importing the same items at the
        same moment may both store them."""
        return self._reads.submit(self._held_item_ids, service, dict(wanted))

    def _held_item_ids(self, service: str, wanted: dict[str, list[str]]) -> dict[str, set[str]]:
        client = self._connection.client()
        held = {}
        for name, ids in wanted.items():
            if name not in TABLES:
                raise ValueError(f"no table named {name!r}")
            rows = client.query(
                f"SELECT DISTINCT itemId FROM {quote(self._connection.database)}.{quote(name)} "
                "WHERE _service = {service:String} AND itemId IN {ids:Array(String)}",
                parameters={"service": service, "ids": ids}).result_rows if ids else []
            held[name] = {item_id for (item_id,) in rows}
        return held

    def close(self) -> None:
        super().close()
        self._reads.shutdown()

    def _checkpoint_if_due(self, idle: bool = True) -> None:
        """ClickHouse merges parts itself: nothing to schedule."""

    def _commit_group(self, group: list[tuple[Batch, Future]]) -> None:
        """Commit the group, or answer every batch in it 503: what ClickHouse took cannot be taken
        back, so retrying batches one by one (as the DuckDB writer does) would store rows twice."""
        try:
            results = self._transaction([batch for batch, _ in group])
        except Exception:  # noqa: BLE001 - any failure is a 503 the SDKs retry, never a lost ack
            log.exception("insert into ClickHouse failed")
            self._settle(group, error=True)
            return
        self._settle(group, results=results)

    def _transaction(self, batches: list[Batch]) -> list:
        inserted = self._insert(batches)
        totals: Counter = Counter()
        for batch in batches:
            totals.update(batch.stats)
        if not (totals or self.after_insert or any(batch.operation for batch in batches)):
            return [None] * len(batches)

        def local(con: duckdb.DuckDBPyConnection) -> list:
            results = [batch.operation(con) if batch.operation else None for batch in batches]
            for name, table in inserted.items():
                for hook in self.after_insert:
                    hook(con, name, table)
            return results
        return self._local.write(stats=totals, operation=local).result()

    def _insert(self, batches: list[Batch]) -> dict[str, pa.Table]:
        """One synchronous Arrow insert per table; the tables as inserted, `_seq` included."""
        by_table: dict[str, list[pa.Table]] = {}
        for batch in batches:
            for name, table in batch.tables.items():
                if table.num_rows:
                    by_table.setdefault(name, []).append(table)
        inserted = {}
        client = self._connection.client()
        for name, tables in by_table.items():
            incoming = pa.concat_tables(tables).combine_chunks()
            incoming = incoming.append_column(SEQ_COLUMN, self.clock.take(incoming.num_rows))
            try:
                client.insert_arrow(name, incoming, database=self._connection.database,
                                    settings=self._connection.insert_settings)
            except Exception:
                self._connection.discard_client()
                raise
            inserted[name] = incoming
        return inserted
