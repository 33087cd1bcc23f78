"""Acknowledged batches not yet in DuckDB, durable in a file of their own (the ingest spool).

A DuckDB commit costs ~20 ms whatever its rows (five INSERTs of 33-37 columns: binding, local
storage, the WAL's scan of the appended rows), so a writer that must commit before it answers
commits groups as small as the clients' batches in flight (~4,000 rows under bench/ingest.py's 16
connections), and spends a third of its time on those fixed costs (bench/README.md, part 22s).
With the spool, a batch is acknowledged once its rows are here and fsync'd: one write per group of
batches, ~1 µs per item. The writer then commits to DuckDB in groups eight times larger, and
records in the same transaction the number of the last record it committed (`spool_state`), so a
restart commits exactly the records after it, once. Readers ask the writer to commit what it holds
first (Writer.sync), so an answered batch is what any later query sees, as before.

Format: records of `<number u64><length u32><crc32 u32>` then `length` bytes: an orjson header
(table names, the lengths of their Arrow IPC streams, the batch's counters) and the streams. A
record cut short by a crash was never acknowledged (its fsync had not returned): reading stops
there, and the file is truncated past what was read.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections import Counter
from collections.abc import Iterator, Mapping
from pathlib import Path

import duckdb
import orjson
import pyarrow as pa
import pyarrow.ipc as ipc

HEADER = struct.Struct("<QII")

DDL = ("CREATE TABLE IF NOT EXISTS spool_state (through UBIGINT NOT NULL)",)


def committed_through(con: duckdb.DuckDBPyConnection) -> int:
    """The number of the last spool record whose rows DuckDB holds (0: none yet)."""
    (through,) = con.execute("SELECT coalesce(max(through), 0) FROM spool_state").fetchall()[0]
    return through


def record_committed(con: duckdb.DuckDBPyConnection, through: int) -> None:
    """Within the transaction that commits the rows of records up to `through`."""
    con.execute("DELETE FROM spool_state")
    con.execute("INSERT INTO spool_state VALUES (?)", [through])


class Spool:
    """The spool file: appended by the writer thread only, read back once at open."""

    def __init__(self, path: Path, through: int):
        self.path = path
        self._file = open(path, "a+b")
        self.last = through
        """The number of the last record written (or committed, for an empty spool)."""

    def pending(self) -> Iterator[tuple[int, Mapping[str, pa.Table], Counter]]:
        """The records after `last` as it was at open (acknowledged, not in DuckDB), in order; the
        file is cut after the last whole record."""
        self._file.seek(0)
        data = self._file.read()
        offset, through = 0, self.last
        while offset + HEADER.size <= len(data):
            number, length, crc = HEADER.unpack_from(data, offset)
            payload = data[offset + HEADER.size:offset + HEADER.size + length]
            if len(payload) < length or zlib.crc32(payload) != crc:
                break
            offset += HEADER.size + length
            if number > through:
                self.last = number
                yield (number, *_decode(payload))
        if offset < len(data):
            self._file.truncate(offset)
        self._file.seek(0, os.SEEK_END)

    def append(self, tables: Mapping[str, pa.Table], stats: Counter) -> int:
        """Write one batch's record (not yet durable: see `sync`); returns its number."""
        self.last += 1
        payload = _encode(tables, stats)
        self._file.write(HEADER.pack(self.last, len(payload), zlib.crc32(payload)))
        self._file.write(payload)
        return self.last

    def sync(self) -> None:
        """Make every appended record durable."""
        self._file.flush()
        os.fsync(self._file.fileno())

    def cut(self, last: int) -> None:
        """Drop the records written after number `last` (none of them acknowledged)."""
        self._file.seek(0)
        data, offset = self._file.read(), 0
        while offset + HEADER.size <= len(data) and HEADER.unpack_from(data, offset)[0] <= last:
            offset += HEADER.size + HEADER.unpack_from(data, offset)[1]
        self._file.truncate(offset)
        self._file.seek(0, os.SEEK_END)
        self.last = last

    def clear(self) -> None:
        """Empty the file: every record in it is committed to DuckDB (numbers go on from `last`)."""
        self._file.truncate(0)
        self._file.seek(0)

    def close(self) -> None:
        self._file.close()


def _encode(tables: Mapping[str, pa.Table], stats: Counter) -> bytes:
    streams = []
    for table in tables.values():
        sink = pa.BufferOutputStream()
        with ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        streams.append(sink.getvalue())
    header = orjson.dumps({"tables": list(tables), "lengths": [s.size for s in streams], "stats": [[*key, n] for key, n in stats.items()]})
    return b"".join([struct.pack("<I", len(header)), header, *(s.to_pybytes() for s in streams)])


def _decode(payload: bytes) -> tuple[dict[str, pa.Table], Counter]:
    (header_length,) = struct.unpack_from("<I", payload)
    header = orjson.loads(payload[4:4 + header_length])
    buffer, offset, tables = pa.py_buffer(payload), 4 + header_length, {}
    for name, length in zip(header["tables"], header["lengths"]):
        tables[name] = ipc.open_stream(buffer.slice(offset, length)).read_all()
        offset += length
    return tables, Counter({(service, counter): n for service, counter, n in header["stats"]})
