"""From a request body (App Insights track or OTLP) to committed rows and the answer.

The preparing (parse, map, route, cap; see prepare.py) runs inline for small bodies, in threads for
large ones the compiled path reads (threads.py) and in a process pool for other large ones; the
rows of all accepted items are then committed in one write before the answer goes out, so an
acknowledgement always means stored.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from collector.extensions import IngestObserver
from collector.ingest import compiled
from collector.ingest.body import decompress_within
from collector.ingest.cap import SpillFailed
from collector.ingest.prepare import Prepared, prepare_body, prepare_otlp, warm_up, worker_init
from collector.ingest.rows import PreparedRows, prepare_rows
from collector.ingest.threads import BodyThreads
from collector.ingest.workers import LEAN_SPAWN
from collector.store.services import Registry
from collector.store.writer import Overloaded, Writer

log = logging.getLogger(__name__)

INLINE_BODY_BYTES = 64 * 1024
"""Bodies up to this size decompressed (an SDK's usual batch of ~100 items) are prepared in the
collector process itself; larger ones go to the pool, still compressed (the worker decompresses).
A compressed body is judged by what it expands to (body.decompress_within): the event loop
decompresses at most this much of it, and a small body is then prepared from that, not again."""


@dataclass
class TrackResult:
    received: int = 0
    accepted: int = 0
    errors: list[dict] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        if not self.errors:
            return 200
        return 206 if self.accepted else 400

    def to_json(self) -> dict:
        return {"itemsReceived": self.received, "itemsAccepted": self.accepted, "errors": self.errors}


class Pipeline:
    def __init__(self, registry: Registry, writer: Writer, blob_dir: Path, workers: int | None = None,
                 observers: Sequence[IngestObserver] = ()):
        self.registry = registry
        self.observers = observers  # the extensions' (collector/extensions.py); a list they may still append to
        self.writer = writer
        self.blob_dir = Path(blob_dir)
        self._workers = workers or multiprocessing.cpu_count()
        self._pool = self._new_pool()
        self._threads = BodyThreads(self._workers) if compiled.available() else None
        self._import_turn = asyncio.Lock()
        warm_up()  # for the bodies prepared inline, and the writer's counters

    def _new_pool(self) -> ProcessPoolExecutor:
        # spawn, not fork: the collector process holds DuckDB and threads, which must not be forked;
        # and without re-running the main module (the whole CLI under `insights up`: workers.py).
        pool = ProcessPoolExecutor(
            self._workers, mp_context=LEAN_SPAWN,
            initializer=worker_init, initargs=(os.getpid(),),
        )
        for _ in range(self._workers):
            pool.submit(int)  # start the workers now, not on the first large request
        return pool

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)
        if self._threads is not None:
            self._threads.close()

    async def ingest_body(self, body: bytes, content_encoding: str | None) -> TrackResult:
        """Prepare and commit a track body; BodyError if unreadable, Overloaded if the writer is behind
        (or the original of an oversized item cannot be kept)."""
        small = decompress_within(body, content_encoding, INLINE_BODY_BYTES)
        if small is not None:
            body, content_encoding = small, None
        return await self._prepare_and_commit(
            small is not None, prepare_body, body, content_encoding, self.registry.routing(), self.blob_dir
        )

    async def ingest_otlp(
        self, signal: str, body: bytes, content_encoding: str | None, content_type: str, ikey: str
    ) -> TrackResult:
        """Prepare and commit an OTLP body; OtlpDecodeError if it is not OTLP."""
        small = decompress_within(body, content_encoding, INLINE_BODY_BYTES)
        if small is not None:
            body, content_encoding = small, None
        return await self._prepare_and_commit(
            small is not None, prepare_otlp,
            signal, body, content_encoding, content_type, ikey, self.registry.routing(), self.blob_dir,
        )

    async def ingest_rows(self, data: bytes, service: str) -> PreparedRows:
        """Commit the rows of an import body (the export format) to a service, each item (by itemId)
        once however often it is imported; Overloaded if the
        writer is behind. Rows are prepared in a thread: an import body is large, and the event
        loop must keep answering meanwhile."""
        prepared = await asyncio.to_thread(prepare_rows, data, service)
        if not prepared.tables:
            return prepared
        # Idempotent: rows whose item the service holds already are left out. Imports take turns from
        # the question to the commit, so two at once cannot both find an item missing and both store it.
        async with self._import_turn:
            wanted = prepared.item_ids()
            stored = await asyncio.wrap_future(self.writer.held_item_ids(service, wanted))
            prepared.drop_stored(stored)
            if prepared.tables:
                await asyncio.wrap_future(self.writer.write(prepared.tables, prepared.stats))
        return prepared

    async def _prepare_and_commit(self, small: bool, prepare, *args) -> TrackResult:
        with self.writer.expecting_batch():
            try:
                prepared = prepare(*args) if small else await self._off_the_loop(prepare, *args)
            except SpillFailed as error:  # a full disk: refused whole, and the client resends
                log.warning("%s", error)
                raise Overloaded(str(error)) from None
            committed = None
            if prepared.tables or prepared.stats:
                committed = self.writer.write(prepared.tables, prepared.stats)
        if committed is not None:
            await asyncio.wrap_future(committed)
            self._tell_observers(prepared.tables)
        return TrackResult(prepared.received, prepared.accepted, prepared.errors)

    def _tell_observers(self, tables: dict) -> None:
        for observer in self.observers:
            try:
                observer(tables)
            except Exception:  # an extension's fault never becomes the sender's
                log.exception("an ingestion observer failed")

    async def _off_the_loop(self, prepare, *args) -> Prepared:
        """A large track body the compiled path reads is prepared in a thread of this process
        (threads.py: no round trip to a worker); every other large body in the pool."""
        if prepare is prepare_body and self._threads is not None:
            prepared = await self._threads.prepare(*args)
            if prepared is not None:
                return prepared
        return await self._in_pool(prepare, *args)

    async def _in_pool(self, prepare, *args) -> Prepared:
        """Run in a worker; if a worker died (the pool is then broken), replace the pool and
        answer 503 so that the client resends, rather than failing every request from now on."""
        try:
            return await asyncio.get_running_loop().run_in_executor(self._pool, prepare, *args)
        except BrokenProcessPool:
            log.error("an ingestion worker died; starting a new pool")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            raise Overloaded("an ingestion worker restarted") from None
