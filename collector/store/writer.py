"""The single writer: one thread owns every write to DuckDB and commits concurrent batches together.

DuckDB allows one writer, and a durable commit costs about the same for 10 rows as for 10,000, so
requests hand their rows to this thread and wait; the thread drains everything that queued up while
the previous commit ran into one transaction (group commit), and only then resolves the waiters, so
an acknowledgement always follows a commit (with the ingest spool on, see spool.py, a durable
write to the spool instead). Checkpoints run here too, when the queue is idle,
because an automatic checkpoint inside a commit costs 100 ms at p99.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb
import numpy as np
import pyarrow as pa

from collector.store import counters, pacing, spool
from collector.store.items import existing_item_ids
from collector.store.schema import SEQ_COLUMN, SEQUENCE
from collector.store.transactions import transaction

log = logging.getLogger(__name__)

Operation = Callable[[duckdb.DuckDBPyConnection], object]

SERIAL_INSERT = "RETURNING NULL"
"""Appended to the writer's INSERTs so that DuckDB plans its plain insert: with more than one
thread and insertion order preserved, DuckDB plans an INSERT from an Arrow table as a batch
insert, which collects each batch of rows apart and merges them, on a worker thread as often as
not; for a group of 4,000 rows the store side then cost ~2.5 µs more CPU per row (of ~16, with
the sequence draw below: bench/store_writer.py, bench/README.md part 22i) than with the plain
insert, what DuckDB plans when it has one thread or when the INSERT returns its rows. The rows
returned are one NULL each, never fetched. Queries keep every thread (`threads` is global)."""

SEQ_BLOCK = 262_144
"""`_seq` values drawn from the DuckDB sequence at a time, and handed out by the writer from memory:
drawing a group's 4,000 in its own statement cost ~1.4 ms of the writer's CPU per group (~3 ms of
its wall time: the writer thread is what bounds ingestion's items/s), a block ~12 ms once per ~65
groups. The sequence is advanced (and logged with the commit) when a block is drawn, so the numbers
of a block are never drawn again, after a crash either; what a restart leaves of a block is a gap,
which nothing minds (`_seq` orders rows; export's checkpoints compare, never count). A group that
fails drops its block (`_commit_group`): DuckDB logs a sequence's advance with the commit of
the transaction that drew it, and a rolled-back one logs nothing, so after a crash the sequence
could hand those numbers out again."""


@dataclass
class Batch:
    """What one `write` queues: Arrow tables by table name (see schema.Table.to_arrow), counters
    to add to `service_counters`, and at most one operation (a service change, a checkpoint) run
    in the same commit."""

    tables: Mapping[str, pa.Table] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)
    operation: Operation | None = None

    @property
    def row_count(self) -> int:
        return sum(table.num_rows for table in self.tables.values())

    @property
    def spoolable(self) -> bool:
        """Rows alone, acknowledged once spooled; an operation needs its commit to answer."""
        return bool(self.tables) and self.operation is None


class Overloaded(RuntimeError):
    """The store cannot take this write now (behind, restarting, or the commit failed); the
    caller should answer 503 with Retry-After, which every SDK keeps and resends."""


class Writer:
    group_target_rows = pacing.GROUP_TARGET_ROWS
    group_wait_seconds = pacing.GROUP_WAIT_SECONDS
    """A store may want other group sizes (the ClickHouse writer: larger)."""
    _spool: spool.Spool | None = None
    _held_rows = 0
    """Without a spool (the ClickHouse writer's case too) nothing is ever held."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, wal_path: str, max_pending_rows: int,
        checkpoint_wal_bytes: int = pacing.CHECKPOINT_WAL_BYTES, journal: spool.Spool | None = None,
        hold_rows: int = pacing.HOLD_ROWS,
    ):
        self._con = con
        self._wal_path = wal_path
        self._checkpoint_wal_bytes = checkpoint_wal_bytes
        self.failed: Exception | None = None
        self.on_fatal: Callable[[Exception], None] = lambda error: None
        self.after_insert: list[Callable[[duckdb.DuckDBPyConnection, str, pa.Table], None]] = []
        """Called with each table's rows as inserted, in the same transaction (e.g. map_rollups.record)."""
        self.after_all_inserts: list[Callable[[duckdb.DuckDBPyConnection], None]] = []
        """Called once the group's rows are all inserted, in the same transaction (lookup_index.flush)."""
        self.after_transaction: list[Callable[[bool], None]] = []
        """Called once a group's transaction is over, with whether it committed (lookup_index.settle)."""
        self._queue: queue.SimpleQueue[tuple[Batch, Future] | None] = queue.SimpleQueue()
        self._pending_rows = 0
        self._seq_next = self._seq_end = 0
        """The block of `_seq` values drawn and not yet handed out: [next, end)."""
        self._expected = 0
        self._spool = journal
        self._hold_rows = hold_rows
        self._handoffs: queue.SimpleQueue = queue.SimpleQueue()
        """With a spool: what the intake thread passes on, in order: (batch, record number) once
        acknowledged, (batch, future) to commit before answering (operations, syncs), None to stop."""
        self._held: list[tuple[Batch, int]] = []
        """Batches acknowledged from the spool, not yet in DuckDB, with their record numbers."""
        self._refused_since: float | None = None
        """When DuckDB first refused the held rows, in a row (HELD_REFUSED_SECONDS)."""
        self._lock = threading.Lock()
        self._room = threading.Condition(self._lock)
        """Notified when held rows were committed (or the writer failed): the intake may go on."""
        self._max_pending_rows = max_pending_rows
        self._thread = threading.Thread(target=self._run, name="duckdb-writer", daemon=True)
        self._intake = threading.Thread(target=self._take_in, name="ingest-spool", daemon=True)
        self._spool_lock = threading.Lock()
        """Held by the intake thread from a record's write until its rows are counted held, and by
        the writer thread to delete committed segments: nothing written is deleted before it is committed."""
        if journal is None:
            self._thread.start()
        else:
            self._intake.start()

    def write(
        self, tables: Mapping[str, pa.Table] | None = None, stats: Counter | None = None,
        operation: Operation | None = None,
    ) -> Future:
        """Queue rows, counter increments and an operation for the next group commit. The future
        resolves once they are committed, to what the operation returned (None without one);
        Overloaded, raised here or through the future, means the caller should retry later."""
        batch = Batch(tables or {}, stats if stats is not None else Counter(), operation)
        rows = batch.row_count
        with self._lock:
            if self.failed is not None:
                raise Overloaded("the store is restarting after a fatal error")
            if rows and self._pending_rows + rows > self._max_pending_rows:
                raise Overloaded(f"{self._pending_rows} rows are waiting to be written")
            self._pending_rows += rows
        future: Future = Future()
        self._queue.put((batch, future))
        return future

    def start(self) -> None:
        """With a spool, start committing once every hook is in place: first the spool's records
        past what DuckDB holds (acknowledged before a crash), then what is written."""
        assert self._spool is not None
        with self._spool_lock:
            self._held = [(Batch(tables, stats), number) for number, tables, stats in self._spool.pending()]
        rows = sum(batch.row_count for batch, _ in self._held)
        with self._lock:
            self._pending_rows += rows
            self._held_rows += rows
        self._thread.start()

    def sync(self) -> None:
        """Return once every batch acknowledged before the call is in DuckDB: what a reader asks
        first, so that a query sees what was answered. Free when nothing is held. If DuckDB
        refuses the held rows (logged by the writer, which keeps them and tries again), the reader
        goes on with what is committed rather than fail."""
        if self._held_rows and threading.current_thread() is not self._thread:
            try:
                self.write().result()
            except Overloaded:
                pass

    def held_item_ids(self, service: str, wanted: Mapping[str, list[str]]) -> Future:
        """Which of `wanted` (item ids by table) the service's rows carry already, by table, once
        every write queued before is committed: what makes an import idempotent."""
        return self.write(operation=lambda con: {
            name: existing_item_ids(con, service, name, ids) for name, ids in wanted.items()})

    @contextmanager
    def expecting_batch(self) -> Iterator[None]:
        """Tell the writer that a batch is being prepared (and will be submitted inside this block,
        if at all), so that the current group may wait for it."""
        with self._lock:
            self._expected += 1
        try:
            yield
        finally:
            with self._lock:
                self._expected -= 1

    def close(self) -> None:
        self._queue.put(None)
        if self._spool is not None:
            self._intake.join()
        self._thread.join()

    def _run(self) -> None:
        """The writer's loop. A fatal DuckDB error (the database instance is then unusable, e.g. a
        checkpoint that found no memory) ends it: what waits is answered 503 (clients resend), and
        `on_fatal` lets the server restart on a fresh instance; committed data is safe in the WAL."""
        try:
            self._loop()
        except duckdb.FatalException as error:
            log.critical("the store failed and must be reopened: %s", error)
            with self._room:
                self.failed = error
                self._room.notify_all()
            self._refuse_waiting()
            self.on_fatal(error)

    def _refuse_waiting(self) -> None:
        for waiting in (self._queue,) if self._spool is None else (self._handoffs, self._queue):
            while True:
                try:
                    item = waiting.get_nowait()
                except queue.Empty:
                    break
                if item is not None and isinstance(item[1], Future):
                    item[1].set_exception(Overloaded("the store is restarting after a fatal error"))

    def _loop(self) -> None:
        source = self._queue if self._spool is None else self._handoffs
        while True:
            try:
                item = source.get(timeout=pacing.HOLD_SECONDS if self._holding else pacing.CHECKPOINT_IDLE_SECONDS)
            except queue.Empty:
                if not self._holding:
                    self._checkpoint_if_due()  # idle for CHECKPOINT_IDLE_SECONDS
                elif self._commit_held():
                    self._checkpoint_if_due(idle=False)  # a lull of HOLD_SECONDS is not idle
                continue
            if item is None:
                self._stop()
                return
            batch, mark = item
            if not isinstance(mark, Future):  # acknowledged from the spool: its record's number
                self._held.append((batch, mark))
                if sum(held.row_count for held, _ in self._held) >= self._hold_rows and self._commit_held():
                    self._checkpoint_if_due(idle=False)
                continue
            group = [item]
            stop = self._spool is None and self._drain_into(group)
            self._commit_group(group)
            self._checkpoint_if_due(idle=stop)
            if stop:
                return

    def _take_in(self) -> None:
        """With a spool, the intake thread: acknowledge row batches once spooled, pass everything
        on to the writer thread in order (which commits while the next batches are spooled)."""
        while True:
            item = self._queue.get()
            if item is None:
                self._handoffs.put(None)
                return
            with self._room:
                self._room.wait_for(lambda: self._held_rows < 2 * self._hold_rows or self.failed is not None)
            group = [item]
            stop = self._drain_into(group)
            numbers = self._spool_group([(batch, future) for batch, future in group if batch.spoolable])
            for batch, future in group:
                if not batch.spoolable:
                    self._handoffs.put((batch, future))
                elif numbers:
                    self._handoffs.put((batch, numbers.pop(0)))
            if stop:
                self._handoffs.put(None)
                return

    @property
    def _holding(self) -> bool:
        """Rows acknowledged from the spool wait for their commit (never without a spool)."""
        return self._spool is not None and bool(self._held)

    def _stop(self) -> None:
        """Commit what is held and checkpoint: the writer is closing."""
        if not self._holding or self._commit_held():
            self._checkpoint_if_due()

    def _spool_group(self, group: list[tuple[Batch, Future]]) -> list[int]:
        """Acknowledge the group once its records are durable in the spool; their numbers (none
        if the spool could not be written: then the group is answered 503)."""
        if not group:
            return []
        assert self._spool is not None
        with self._spool_lock:
            last = self._spool.last
            try:
                numbers = [self._spool.append(batch.tables, batch.stats) for batch, _ in group]
                self._spool.sync()
            except OSError:  # e.g. the disk is full: nothing of the group is acknowledged
                log.exception("the ingest spool could not be written")
                self._spool.cut(last)
                self._settle(group, error=True)
                return []
            with self._lock:
                self._held_rows += sum(batch.row_count for batch, _ in group)
        for _, future in group:
            future.set_result(None)
        return numbers

    def _commit_held(self) -> bool:
        """Commit the held rows with their spool mark; False (they stay held, and the writer
        answers 503 once they fill `max_pending_rows`) if DuckDB refused them, until it has
        refused them for HELD_REFUSED_SECONDS: then each goes alone (`_commit_held_alone`)."""
        refusal = self._refusal([batch for batch, _ in self._held], self._held[-1][1])
        if refusal is None:
            self._release_held(len(self._held))
            return True
        if self._refused_since is None:
            self._refused_since = time.monotonic()
            log.error("acknowledged rows could not be committed; kept in the spool, tried again: %s", refusal)
        if time.monotonic() - self._refused_since < pacing.HELD_REFUSED_SECONDS:
            return False
        return self._commit_held_alone()

    def _commit_held_alone(self) -> bool:
        """Commit the held batches one by one, setting aside each that DuckDB refuses alone;
        False if one cannot be set aside or DuckDB refuses even its mark (what is left stays held)."""
        assert self._spool is not None
        while self._held:
            batch, number = self._held[0]
            if (refusal := self._refusal([batch], number)) is not None:
                try:
                    path = self._spool.set_aside(number, batch.tables, batch.stats, str(refusal))
                except OSError:  # e.g. the disk is full: kept held, tried again
                    log.exception("a refused batch could not be set aside")
                    return False
                if self._refusal([Batch(stats=counters.set_aside(batch.stats))], number) is not None:
                    return False
                log.error("an acknowledged batch of %d rows was set aside in %s: the store refuses it: %s",
                          batch.row_count, path, refusal)
            self._release_held(1)
        return True

    def _refusal(self, batches: list[Batch], through: int) -> Exception | None:
        """Commit *batches* with the spool's mark (every record up to *through* is in DuckDB);
        what DuckDB raised if it refused."""
        try:
            self._transaction([*batches, Batch(operation=lambda con: spool.record_committed(con, through))])
        except duckdb.FatalException:
            raise  # the spool keeps them for the next open
        except Exception as error:
            self._seq_next = self._seq_end  # see SEQ_BLOCK
            return error
        return None

    def _release_held(self, count: int) -> None:
        """The first *count* held batches are committed (or set aside): drop them, make room for
        the intake and delete the spool's segments they fill."""
        released, self._held = self._held[:count], self._held[count:]
        self._refused_since = None
        rows = sum(batch.row_count for batch, _ in released)
        with self._room:
            self._pending_rows -= rows
            self._held_rows -= rows
            self._room.notify_all()
        assert self._spool is not None
        with self._spool_lock:
            self._spool.release(released[-1][1])

    def _drain_into(self, group: list) -> bool:
        """Add what queued up to the group, waiting briefly for batches still being prepared;
        True if the writer was asked to stop."""
        rows = group[0][0].row_count
        deadline = time.monotonic() + self.group_wait_seconds
        while rows < pacing.MAX_GROUP_ROWS:
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                wait = deadline - time.monotonic()
                if rows >= self.group_target_rows or wait <= 0 or not self._expected:
                    return False
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    return False
            if item is None:
                return True
            group.append(item)
            rows += item[0].row_count
        return False

    def _commit_group(self, group: list[tuple[Batch, Future]]) -> None:
        if self._holding and not self._commit_held():
            self._settle(group, error=True)  # an operation must not run ahead of acknowledged rows
            return
        if not any(batch.tables or batch.stats or batch.operation for batch, _ in group):
            self._settle(group, results=[None] * len(group))  # a sync: nothing to commit
            return
        try:
            results = self._transaction([batch for batch, _ in group])
        except duckdb.FatalException:
            for _, future in group:
                future.set_exception(Overloaded("the store is restarting after a fatal error"))
            raise
        except Exception as error:
            self._seq_next = self._seq_end  # see SEQ_BLOCK: the block drawn in this transaction may be logged nowhere
            if len(group) == 1:
                log.exception("write failed")
                self._settle(group, error=error)
                return
            for item in group:  # isolate the culprit: each batch alone
                self._commit_group([item])
            return
        self._settle(group, results=results)

    def _settle(self, group, results=None, error: Exception | bool = False) -> None:
        with self._lock:
            self._pending_rows -= sum(batch.row_count for batch, _ in group)
        for index, (_, future) in enumerate(group):
            if error:
                refused = Overloaded("the store could not commit this batch")
                refused.__cause__ = error if isinstance(error, Exception) else None  # for the log, not the client
                future.set_exception(refused)
            else:
                future.set_result(results[index])

    def _transaction(self, batches: list[Batch]) -> list:
        con = self._con
        committed = False
        try:
            with transaction(con):
                results = [batch.operation(con) if batch.operation else None for batch in batches]
                self._insert_rows(batches)
                self._add_stats(batches)
            committed = True
        finally:
            for settle in self.after_transaction:
                settle(committed)
        return results

    def _insert_rows(self, batches: list[Batch]) -> None:
        by_table: dict[str, list[pa.Table]] = {}
        for batch in batches:
            for name, table in batch.tables.items():
                by_table.setdefault(name, []).append(table)
        if not by_table:
            return
        sequence = self._next_seq(sum(batch.row_count for batch in batches))
        start = 0
        for name, tables in by_table.items():
            # One contiguous table scans faster than many small chunks.
            incoming = pa.concat_tables(tables).combine_chunks()
            incoming = incoming.append_column(SEQ_COLUMN, sequence.slice(start, incoming.num_rows))
            start += incoming.num_rows
            # DuckDB scans the local Arrow table `incoming` by name (a replacement scan); its columns go
            # in BY NAME, since a column added to a table in a later version (schema.py) comes last.
            self._con.execute(f'INSERT INTO "{name}" BY NAME SELECT * FROM incoming {SERIAL_INSERT}')
            for hook in self.after_insert:
                hook(self._con, name, incoming)
        for done in self.after_all_inserts:
            done(self._con)

    def _next_seq(self, count: int) -> pa.ChunkedArray:
        """`count` values of `_seq`: durable, and never handed out twice, even when the rows that
        carried the highest numbers are deleted. They come from a block of at least SEQ_BLOCK values
        drawn from a DuckDB sequence in one statement (see SEQ_BLOCK); only this thread draws."""
        if self._seq_end - self._seq_next < count:
            drawn = max(int(count), SEQ_BLOCK)
            first, last = self._con.execute(
                f"SELECT min(seq), max(seq) FROM (SELECT nextval('{SEQUENCE}') AS seq FROM range({drawn}))").fetchall()[0]
            if last - first + 1 != drawn:  # only this thread draws from the sequence: its values are consecutive
                raise RuntimeError(f"{SEQUENCE} gave {drawn} values from {first} to {last}")
            self._seq_next, self._seq_end = first, last + 1
        first = self._seq_next
        self._seq_next += count
        return pa.chunked_array([pa.array(np.arange(first, first + count, dtype=np.int64))])

    def _add_stats(self, batches: list[Batch]) -> None:
        totals: Counter = Counter()
        for batch in batches:
            totals.update(batch.stats)
        if totals:
            counters.append(self._con, totals)

    def _checkpoint_if_due(self, idle: bool = True) -> None:
        """Checkpoint when idle, or when the WAL grew large under constant load."""
        try:
            wal = os.path.getsize(self._wal_path)
        except OSError:
            return
        if not (wal and (idle or wal > self._checkpoint_wal_bytes)):
            return
        started = time.perf_counter()
        try:
            if idle:
                counters.compact(self._con)
            self._con.execute("CHECKPOINT")
        except duckdb.FatalException:
            raise
        except duckdb.Error as error:  # e.g. out of memory while queries run: try again later
            log.warning("checkpoint postponed: %s", error)
            return
        log.debug("checkpoint of %d WAL bytes took %.1f ms", wal, (time.perf_counter() - started) * 1000)
