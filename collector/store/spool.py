"""Acknowledged batches not yet in DuckDB, durable in files of their own (the ingest spool).

A DuckDB commit costs ~20 ms whatever its rows (five INSERTs of 33-37 columns: binding, local
storage, the WAL's scan of the appended rows), so a writer that must commit before it answers
commits groups no larger than the clients' batches in flight (~4,000 rows under bench/ingest.py's
16 connections) and spends a third of its time on those fixed costs (bench/README.md, part 22s).
With the spool, a batch is acknowledged once its rows are written here and fsync'd (one fsync per
group of batches), and the writer commits to DuckDB in groups up to eight times larger while the next
batches are spooled. Each commit records the number of the last record it holds (`spool_state`)
in the same transaction, so a restart commits exactly the records after it, once. Readers ask the
writer to commit what it holds first (Writer.sync): a query sees every batch answered before it.

Records go to segment files named by their first record's number; past SEGMENT_BYTES the next
record starts a new segment, and a segment whose records are all committed is deleted. A record is
`<number u64><length u32><crc32 u32>` and `length` bytes: an orjson header (table names, the
lengths of their Arrow IPC streams, the batch's counters), then the streams. A record cut short by
a crash was never acknowledged (its fsync had not returned): reading stops there, and the segment
is truncated after the last whole record.

A batch DuckDB keeps refusing (the writer tries the held batches alone after HELD_REFUSED_SECONDS
of refusals) is set aside: its record goes to `rejected/<number>.spool` in the same format, with
what DuckDB said in `rejected/<number>.reason`, and the batches after it go in; set_aside.py lists
and replays them.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import BinaryIO

import duckdb
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

HEADER = struct.Struct("<QII")
SEGMENT_BYTES = 64 * 2**20
"""A segment takes records until it is this large; the writer deletes it once they are committed."""

REJECTED_FOLDER = "rejected"

DDL = ("CREATE TABLE IF NOT EXISTS spool_state (through UBIGINT NOT NULL)",)

Record = tuple[int, dict[str, pa.Table], Counter]


def committed_through(con: duckdb.DuckDBPyConnection) -> int:
    """The number of the last spool record whose rows DuckDB holds (0: none yet)."""
    (through,) = con.execute("SELECT coalesce(max(through), 0) FROM spool_state").fetchall()[0]
    return through


def record_committed(con: duckdb.DuckDBPyConnection, through: int) -> None:
    """Within the transaction that commits the rows of the records up to `through`."""
    con.execute("DELETE FROM spool_state")
    con.execute("INSERT INTO spool_state VALUES (?)", [through])


class Spool:
    """The spool's folder: appended by one thread (the writer's intake), read back once at open."""

    def __init__(self, folder: Path, through: int):
        folder.mkdir(mode=0o700, exist_ok=True)
        self.folder = folder
        self.last = through
        """The number of the last record written (or committed, for an empty spool)."""
        self._file: BinaryIO | None = None

    def pending(self) -> Iterator[Record]:
        """The records after `last` as it was at open (acknowledged, not in DuckDB), in order."""
        through = self.last
        for path in self._segments():
            for record in read_records(path):
                if record[0] > through:
                    self.last = record[0]
                    yield record

    def append(self, tables: Mapping[str, pa.Table], stats: Counter) -> int:
        """Write one batch's record (durable after `sync`); returns its number."""
        if self._file is None or self._file.tell() >= SEGMENT_BYTES:
            self._start_segment()
        assert self._file is not None
        self.last += 1
        self._file.write(_record(self.last, tables, stats))
        return self.last

    def sync(self) -> None:
        """Make every appended record durable."""
        if self._file is not None:
            self._file.flush()
            os.fsync(self._file.fileno())

    def cut(self, last: int) -> None:
        """Drop the records written after number `last` (none of them acknowledged)."""
        if self._file is not None:
            try:
                self._file.close()
            except OSError:  # what the failed write left in the buffer: cut below
                pass
            self._file = None
            _truncate_after(self._segments()[-1], last)
        self.last = last

    def release(self, through: int) -> None:
        """Delete the segments whose records are all committed (numbers up to `through`)."""
        segments = self._segments()
        for path, following in zip(segments, segments[1:]):
            if int(following.stem) - 1 <= through:
                path.unlink()

    def set_aside(self, number: int, tables: Mapping[str, pa.Table], stats: Counter, reason: str) -> Path:
        """Keep an acknowledged batch DuckDB will not take in a file of its own (durable on return)
        rather than in a segment, with DuckDB's reason beside it (set_aside.py lists and replays them)."""
        folder = self.folder / REJECTED_FOLDER
        folder.mkdir(mode=0o700, exist_ok=True)
        path = folder / f"{number:020d}.spool"
        with open(path, "wb") as file:
            file.write(_record(number, tables, stats))
            file.flush()
            os.fsync(file.fileno())
        reason_path(path).write_text(reason)
        return path

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def _start_segment(self) -> None:
        if self._file is not None:
            self._file.close()
        self._file = open(self.folder / f"{self.last + 1:020d}.spool", "ab")
        directory = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(directory)  # the new file's name is as durable as what is written in it
        finally:
            os.close(directory)

    def _segments(self) -> list[Path]:
        return sorted(self.folder.glob("*.spool"))


def reason_path(path: Path) -> Path:
    """Where a batch set aside in `path` keeps what the store said when it refused it."""
    return path.with_suffix(".reason")


def read_records(path: Path) -> Iterator[Record]:
    """A segment's whole records; the segment is cut after the last of them."""
    data, offset = path.read_bytes(), 0
    while offset + HEADER.size <= len(data):
        number, length, crc = HEADER.unpack_from(data, offset)
        payload = data[offset + HEADER.size:offset + HEADER.size + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            break
        offset += HEADER.size + length
        yield (number, *_decode(payload))
    if offset < len(data):
        os.truncate(path, offset)


def _truncate_after(path: Path, last: int) -> None:
    data, offset = path.read_bytes(), 0
    while offset + HEADER.size <= len(data):
        number, length, _ = HEADER.unpack_from(data, offset)
        if number > last:
            break
        offset += HEADER.size + length
    os.truncate(path, offset)


def _record(number: int, tables: Mapping[str, pa.Table], stats: Counter) -> bytes:
    """One record: its header (number, length, CRC) and payload."""
    payload = _encode(tables, stats)
    return HEADER.pack(number, len(payload), zlib.crc32(payload)) + payload


def _encode(tables: Mapping[str, pa.Table], stats: Counter) -> bytes:
    streams = []
    for table in tables.values():
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        streams.append(sink.getvalue())
    header = orjson.dumps({"tables": list(tables), "lengths": [stream.size for stream in streams],
                           "stats": [[*key, count] for key, count in stats.items()]})
    return b"".join([struct.pack("<I", len(header)), header, *(stream.to_pybytes() for stream in streams)])


def _decode(payload: bytes) -> tuple[dict[str, pa.Table], Counter]:
    (header_length,) = struct.unpack_from("<I", payload)
    header = orjson.loads(payload[4:4 + header_length])
    buffer, offset, tables = pa.py_buffer(payload), 4 + header_length, {}
    for name, length in zip(header["tables"], header["lengths"]):
        tables[name] = ipc.open_stream(buffer.slice(offset, length)).read_all()
        offset += length
    return tables, Counter({(service, counter): count for service, counter, count in header["stats"]})
