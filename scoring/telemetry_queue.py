"""The bounded in-memory queue between capture and the spool, drained by a background thread.

`put` is what the request path pays: one deque append, never a wait. When the queue is full the new
item is dropped and counted (reported by /metrics), because blocking a request or growing without
bound would both be worse. The drain thread hands everything to a sink (the disk spool, or an
in-memory sink in tests) every `interval` seconds, or sooner when the queue fills up, and follows
the live enable_app_insights switch (`switch`, see switch.py) as often.

While the switch says off, items are held, not queued: kept in memory only as long as they may
belong after a flip to on that has not reached us yet (newer than the switch's `off_at`, and at
most HOLD_MAX_S old when the collector cannot be asked), then dropped and counted as `withheld`.
When the switch turns on, what is held is queued, so no request served after the flip is lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from typing import Protocol

log = logging.getLogger(__name__)

HOLD_MAX_S = 10.0
"""The longest an item is held while the switch says off (five heartbeats without an answer)."""


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
        self._held: deque[tuple[float, bytes]] = deque()
        self.withheld = 0
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

    @property
    def capturing(self) -> bool:
        """Whether items should be built: on, or off with a switch that may turn on any moment."""
        return self.enabled or self.switch is not None

    def put(self, line: bytes) -> None:
        if not self.enabled:
            if self.switch is not None:
                if len(self._held) >= self.capacity:
                    self._held.popleft()
                    self.withheld += 1
                self._held.append((time.time(), line))
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
                self.follow_switch()
            self.flush()

    def follow_switch(self) -> None:
        """Read the switch: on, queue what was held; off, drop what is held from before `off_at`."""
        self.enabled = self.switch()
        if self.enabled:
            while self._held:  # also what a put() that saw "off" just before added
                if len(self._items) >= self.capacity:
                    self._held.popleft()
                    self.dropped += 1
                    continue
                self._items.append(self._held.popleft()[1])
                self.accepted += 1
            return
        cutoff = max(getattr(self.switch, "off_at", 0.0), time.time() - HOLD_MAX_S)
        while self._held and self._held[0][0] < cutoff:
            self._held.popleft()
            self.withheld += 1
