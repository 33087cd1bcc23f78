"""Acknowledged batches the store refused, set aside by the writer (spool.py's `rejected/`), listed
and replayed: once what refused them is fixed (memory freed or a limit raised, a disk with room
again), a replay commits them, so that nothing acknowledged stays out of the store.

A replay commits each batch in a transaction of its own together with a row of
`set_aside_replayed` naming its record, then deletes its files. A crash between the two leaves the
files, which the next listing skips and the next replay deletes: no row goes in twice. A batch
refused again stays set aside, with the new reason.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from collector.store import counters, spool
from collector.store.writer import Overloaded, Writer

DDL = ("CREATE TABLE IF NOT EXISTS set_aside_replayed (record UBIGINT NOT NULL)",)


class SetAside:
    def __init__(self, folder: Path, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]],
                 writer: Writer):
        self.folder = folder
        self._reader = reader
        self._writer = writer
        self._replaying = threading.Lock()
        """One replay at a time: two would both find a batch not yet replayed."""

    def batches(self) -> list[dict]:
        """What is set aside, oldest first: its record number, when, its rows by table, its items
        by service and what the store said."""
        replayed = self._replayed()
        return [_described(path, record) for path, record in self._files() if record[0] not in replayed]

    def replay(self) -> dict:
        """Commit every batch set aside; those the store refuses again stay, with its reason."""
        with self._replaying:
            replayed_before = self._replayed()
            replayed, refused = [], []
            for path, record in self._files():
                number, tables, stats = record
                if number not in replayed_before:
                    try:
                        self._writer.write(tables, counters.replayed(stats), operation=_marking_replayed(number)).result()
                    except Overloaded as error:
                        reason = str(error.__cause__ or error)
                        path.with_suffix(".reason").write_text(reason)
                        refused.append({"record": number, "reason": reason})
                        continue
                    replayed.append(_described(path, record))
                _remove(path)
        return {"replayed": len(replayed), "items": sum(sum(b["items"].values()) for b in replayed),
                "batches": replayed, "refused": refused}

    def _files(self) -> Iterator[tuple[Path, spool.Record]]:
        for path in sorted(self.folder.glob("*.spool")):
            for record in spool.read_records(path):
                yield path, record

    def _replayed(self) -> set[int]:
        with self._reader() as cursor:
            return {number for (number,) in cursor.execute("SELECT record FROM set_aside_replayed").fetchall()}


def _marking_replayed(number: int) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """The operation that records, in the transaction committing its rows, that the batch is replayed."""
    def mark(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("INSERT INTO set_aside_replayed VALUES (?)", [number])
    return mark


def _described(path: Path, record: spool.Record) -> dict:
    number, tables, stats = record
    items: Counter = Counter()
    for (service, counter), count in stats.items():
        if counter == "accepted":
            items[service] += count
    reason = path.with_suffix(".reason")
    return {
        "record": number,
        "set_aside_at": datetime.fromtimestamp(path.stat().st_mtime, UTC).isoformat(timespec="seconds"),
        "bytes": path.stat().st_size,
        "rows": {name: table.num_rows for name, table in tables.items()},
        "items": dict(items),
        "reason": reason.read_text() if reason.exists() else "",
    }


def _remove(path: Path) -> None:
    path.with_suffix(".reason").unlink(missing_ok=True)
    path.unlink(missing_ok=True)
