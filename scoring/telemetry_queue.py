"""The bounded in-memory queue between capture and the spool, drained by a background thread.

`put` is what the request path pays: one deque append, never a wait. When the queue is full the new
item is dropped and counted (reported by /metrics), because blocking a request or growing without
bound would both be worse. The drain thread hands everything to a sink (the disk spool, or an
in-memory sink in tests) every `interval` seconds, or sooner when the queue fills up, and follows
the live enable_app_insights switch (`switch`, see switch.py) as often.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)


class Sink(Protocol):
    def write(self, lines: list[bytes]) -> object: ...


class MemorySink:
    """Keeps what it is given; the test double for the spool."""

    def __init__(self):
        self.lines: list[bytes] = []

    def write(self, lines: list[bytes]) -> None:
        self.lines.extend(lines)


class TelemetryQueue:
    def __init__(self, sink: Sink, capacity: int = 50_000, interval: float = 0.2, switch=None):
        self.sink = sink
        self.switch = switch
        self.capacity = capacity
        self.interval = interval
        self.enabled = True
        self._items: deque[bytes] = deque()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        self._lock = threading.Lock()
        self.accepted = 0
        self.dropped = 0
        self.spooled = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="telemetry-drain", daemon=True)

    def start(self) -> TelemetryQueue:
        self._thread.start()
        return self

    def put(self, line: bytes) -> None:
        if not self.enabled:
            return
        if len(self._items) >= self.capacity:
            self.dropped += 1
            return
        self._items.append(line)
        self.accepted += 1
        if len(self._items) >= self.capacity // 2:
            self._wake.set()

    @property
    def queued(self) -> int:
        return len(self._items)

    def flush(self) -> None:
        """Move everything queued to the sink now (also called at shutdown)."""
        with self._lock:
            count = len(self._items)
            if not count:
                return
            lines = [self._items.popleft() for _ in range(count)]
            try:
                self.sink.write(lines)
                self.spooled += count
            except OSError:
                self.failed += count
                log.exception("could not write %d telemetry items to the spool", count)

    def close(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self.flush()

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            if self.switch is not None:
                self.enabled = self.switch()
            self.flush()
