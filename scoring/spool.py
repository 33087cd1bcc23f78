"""The disk spool: telemetry waits here, as files of ready-to-send envelope lines, until sent.

Every item passes through the spool, not only when the collector is down: the worker process writes
segments and the supervisor process sends them, so sending (HTTP, retries, backoff) never runs in the
process that scores. A segment is written to a temporary name and renamed, so a reader never sees
half a segment; its name carries its item count, so the bound can be enforced (oldest segments
dropped, their items counted) without reading them.
"""

from __future__ import annotations

import itertools
import os
import time
from dataclasses import dataclass
from pathlib import Path

SUFFIX = ".ndjson"
_sequence = itertools.count()


@dataclass(frozen=True)
class Segment:
    path: Path
    items: int
    size: int


class Spool:
    def __init__(self, directory: Path | str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)

    def write(self, lines: list[bytes]) -> Segment | None:
        """One new segment holding `lines` (each one JSON document, no newline)."""
        if not lines:
            return None
        body = b"\n".join(lines) + b"\n"
        name = f"{time.time_ns():020d}-{os.getpid()}-{next(_sequence):08d}-{len(lines)}{SUFFIX}"
        temporary = self.directory / f".tmp-{name}"
        with open(temporary, "wb") as handle:
            handle.write(body)
        final = self.directory / name
        os.replace(temporary, final)
        return Segment(final, len(lines), len(body))

    def segments(self) -> list[Segment]:
        """Ready segments, oldest first."""
        found = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.startswith(".") or not entry.name.endswith(SUFFIX):
                    continue
                try:
                    size = entry.stat().st_size
                except FileNotFoundError:
                    continue
                found.append(Segment(Path(entry.path), _items_of(entry.name), size))
        found.sort(key=lambda s: s.path.name)
        return found

    @staticmethod
    def read(segment: Segment) -> list[bytes]:
        return [line for line in segment.path.read_bytes().split(b"\n") if line.strip()]

    @staticmethod
    def remove(segment: Segment) -> None:
        try:
            segment.path.unlink()
        except FileNotFoundError:
            pass

    def enforce(self, max_bytes: int) -> int:
        """Drop the oldest segments until the spool fits; the number of items dropped."""
        segments = self.segments()
        total = sum(s.size for s in segments)
        dropped = 0
        for segment in segments:
            if total <= max_bytes:
                break
            self.remove(segment)
            total -= segment.size
            dropped += segment.items
        return dropped

    def totals(self) -> tuple[int, int]:
        """(items, bytes) waiting."""
        segments = self.segments()
        return sum(s.items for s in segments), sum(s.size for s in segments)


def _items_of(name: str) -> int:
    try:
        return int(name[: -len(SUFFIX)].rsplit("-", 1)[1])
    except (IndexError, ValueError):
        return 1
