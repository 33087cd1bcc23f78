"""What lets a poller skip reading the store when nothing it reads has changed.

The alerts scheduler, the delivery loop and the availability probes look for due work several
times a second. Each look was a query, whatever was configured: ~4% of a core on an idle collector
and, under ingestion, cursors competing with the writer for the store and the GIL (bench/README.md,
part 22f). Every write to their tables goes through one state object in this process (the single
writer; on a store that N collectors share, the ClickHouse state classes are other classes and do
not use this), so that object counts its finished writes (`Changes`) and keeps its last answer
(`Memo`) until the count moves or, for answers that depend on the clock, until the moment the
answer could change by the clock alone.

Exact by construction: the count is read before the query and bumped after a write has finished
(committed or not), so an answer read concurrently with a write is stored under the count from
before that write and is read again at the next look.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


class Changes:
    """How many writes to one piece of state have finished."""

    def __init__(self) -> None:
        self._count = 0
        self._lock = threading.Lock()

    @property
    def count(self) -> int:
        return self._count

    def track(self, future: Future) -> Future:
        """`future` (a writer's write): counted once it is done, whatever its outcome."""
        future.add_done_callback(self._bump)
        return future

    def _bump(self, _: object = None) -> None:
        with self._lock:
            self._count += 1


class Memo(Generic[T]):
    """One read's answer, kept until `changes` moves or the clock reaches the answer's `until`."""

    def __init__(self, changes: Changes, clock: Callable[[], datetime]):
        self._changes = changes
        self._clock = clock
        self._seen: int | None = None
        self._answer: T | None = None
        self._until: datetime | None = None

    def get(self, read: Callable[[], tuple[T, datetime | None]]) -> T:
        """The kept answer, or `read()`'s: (answer, the moment it may change by the clock, or None
        if only a write can change it)."""
        seen = self._changes.count
        if seen == self._seen and (self._until is None or self._clock() < self._until):
            return self._answer  # type: ignore[return-value]
        answer, until = read()
        self._seen, self._answer, self._until = seen, answer, until
        return answer
