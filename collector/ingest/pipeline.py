"""From a request body to committed rows and the App Insights track response.

The preparing (parse, map, route, cap; see prepare.py) runs inline for small bodies and in a
process pool for large ones; the rows of all accepted items are then committed in one write before
the answer goes out, so an acknowledgement always means stored.
"""

from __future__ import annotations

import asyncio
import multiprocessing
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from collector.ingest.body import decompress
from collector.ingest.prepare import Prepared, prepare_body, prepare_items
from collector.store.services import Registry
from collector.store.writer import Batch, Writer

INLINE_BODY_BYTES = 64 * 1024
"""Decompressed bodies up to this size (an SDK's usual batch of ~100 items) are prepared in the
collector process itself; larger ones go to the pool."""


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
    def __init__(self, registry: Registry, writer: Writer, blob_dir: Path, workers: int | None = None):
        self.registry = registry
        self.writer = writer
        self.blob_dir = Path(blob_dir)
        # spawn, not fork: the collector process holds DuckDB and threads, which must not be forked.
        context = multiprocessing.get_context("spawn")
        self._pool = ProcessPoolExecutor(max_workers=workers or multiprocessing.cpu_count(), mp_context=context)

    def close(self) -> None:
        self._pool.shutdown(cancel_futures=True)

    async def ingest_body(self, body: bytes, content_encoding: str | None) -> TrackResult:
        """Prepare and commit a track body; BodyError if unreadable, Overloaded if the writer is behind."""
        routing = self.registry.routing()
        data = decompress(body, content_encoding)
        if len(data) <= INLINE_BODY_BYTES:
            prepared = prepare_body(data, routing, self.blob_dir)
        else:
            loop = asyncio.get_running_loop()
            prepared = await loop.run_in_executor(self._pool, prepare_body, data, routing, self.blob_dir)
        return await self._commit(prepared)

    async def ingest_items(self, items: list[object]) -> TrackResult:
        """Prepare and commit envelopes already parsed (those converted from OTLP)."""
        return await self._commit(prepare_items(items, self.registry.routing(), self.blob_dir))

    async def _commit(self, prepared: Prepared) -> TrackResult:
        if prepared.tables or prepared.stats:
            batch = Batch(tables=prepared.tables, stats=prepared.stats)
            await asyncio.wrap_future(self.writer.submit(batch))
        return TrackResult(prepared.received, prepared.accepted, prepared.errors)
