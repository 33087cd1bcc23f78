"""The shape the scheduler, the availability probes and the deliveries share: a thread that looks
for due work every few tenths of a second and hands each piece to a pool, at most one at a time
per key (a rule, a test, a notification), so that a slow webhook or a slow query delays its own
key and no other."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable, Iterable
from concurrent.futures import ThreadPoolExecutor

log = logging.getLogger(__name__)

Work = tuple[Hashable, Callable[[], None]]
"""(key, what to run): the work for one key, skipped while that key's previous work runs."""


class Ticking:
    def __init__(self, name: str, workers: int, tick_s: float):
        self._tick_s = tick_s
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix=name)
        self._busy: set[Hashable] = set()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.active: Callable[[], bool] = lambda: True
        """Whether this collector does this work now: on a store N collectors share, while it holds
        the alerts lease (alerts/extension.py); no new work is handed out otherwise."""

    def due(self) -> Iterable[Work]:
        """The work due now; runs on the ticking thread."""
        raise NotImplementedError

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        """No new work; the work in hand finishes."""
        self._stop.set()
        self._thread.join()
        self._pool.shutdown(wait=True, cancel_futures=True)

    def running(self) -> int:
        return len(self._busy)

    def _run(self) -> None:
        while not self._stop.wait(self._tick_s):
            if not self.active():
                continue
            try:
                for key, work in self.due():
                    self._submit(key, work)
            except Exception:  # the store restarting, say: the next pass tries again
                log.exception("%s: a pass failed", self._thread.name)

    def _submit(self, key: Hashable, work: Callable[[], None]) -> None:
        with self._lock:
            if key in self._busy:
                return
            self._busy.add(key)
        self._pool.submit(self._guarded, key, work)

    def _guarded(self, key: Hashable, work: Callable[[], None]) -> None:
        try:
            work()
        finally:
            with self._lock:
                self._busy.discard(key)
