"""Large track bodies prepared in threads of the collector process, where the compiled path reads them.

A body over pipeline.INLINE_BODY_BYTES (the SDKs' 500-item batches) went to the process pool:
pickled to a spawned worker, its Arrow tables sent back as IPC, through the pool's manager
thread, ~9 µs of CPU per item, as much as the C parse itself (bench/README.md, part 22c). Preparing
such bodies inline in the event loop was tried and reverted: the C parse held the GIL, so the
event loop, the writer thread and the parse took turns on one core. Now the parse releases the GIL
(_cenvelope.c), and zlib does while it decompresses, so a pool of threads (one per core) prepares
these bodies in the collector process while its event loop answers and its writer commits; what
still holds the GIL per body is the Arrow assembly (compiled.py) and the Python path's items.

The rule: a body the compiled path reads is prepared here, with the few items it leaves to the
Python path (a quirk, a stack string, sampling); a body it declines whole (not JSON it reads
exactly as orjson, or the extension is not built), or of which it leaves more than MOST_LEFT of the
items (azmlinfsrv's traces, all quirks, for one), goes to the pool as before, as does every OTLP
body: the Python path holds the GIL for ~15 µs per item, which a worker spends on its own core.
Nothing changes for the answer: the pipeline commits what comes back before it acknowledges.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from collector.ingest.prepare import Prepared, Routing, prepare_compiled

MOST_LEFT = 0.5
"""Past this share of a body's items left to the Python path, the body goes to the pool (where the
compiled path reads it again, GIL-free and ~4 µs per item, and the Python path takes the rest)."""


class BodyThreads:
    """The collector's threads for compiled bodies (see the module's docstring)."""

    def __init__(self, workers: int):
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="ingest-prepare")

    async def prepare(self, body: bytes, content_encoding: str | None, routing: Routing, blob_dir: Path) -> Prepared | None:
        """The prepared body, or None if the compiled path declines it (the pool's then)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self._executor, prepare_compiled, body, content_encoding, routing, blob_dir, MOST_LEFT
        )

    def close(self) -> None:
        self._executor.shutdown(cancel_futures=True)
