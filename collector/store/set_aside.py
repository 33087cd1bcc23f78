"""Acknowledged batches the store refused, set aside by the writer (spool.py's `rejected/`), listed
and replayed: once what refused them is fixed (memory freed or a limit raised, a disk with room
again), a replay commits them, so that nothing acknowledged stays out of the store.

A replay commits the batches in groups of up to REPLAY_GROUP_ROWS rows, each group together with the
rows of `set_aside_replayed` naming its records, then deletes their files. A crash between the two
leaves the files, which the next listing skips and the next replay deletes: no row goes in twice.
A group the store refuses is tried batch by batch; a batch refused alone stays set aside, with the
new reason.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from collector.store import counters, pacing, spool
from collector.store.writer import Overloaded, Writer

DDL = ("CREATE TABLE IF NOT EXISTS set_aside_replayed (record UBIGINT NOT NULL)",)

REPLAY_GROUP_ROWS = pacing.HOLD_ROWS
"""Rows of set-aside batches committed in one transaction: a transaction costs ~20 ms whatever its
rows, so batch by batch (500 rows each) a replay ran at a third of ingestion's items/s."""

Pending = tuple[Path, spool.Record]


@dataclass
class _Outcome:
    replayed: list[dict] = field(default_factory=list)
    refused: list[dict] = field(default_factory=list)

    def to_json(self) -> dict:
        return {"replayed": len(self.replayed), "items": item_count(self.replayed), "batches": self.replayed,
                "refused": self.refused}


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
            outcome, group, rows = _Outcome(), [], 0
            for path, record in self._files():
                if record[0] in replayed_before:
                    _remove(path)
                    continue
                group.append((path, record))
                rows += sum(table.num_rows for table in record[1].values())
                if rows >= REPLAY_GROUP_ROWS:
                    self._commit(group, outcome)
                    group, rows = [], 0
            if group:
                self._commit(group, outcome)
        return outcome.to_json()

    def _commit(self, group: list[Pending], outcome: _Outcome) -> None:
        """Commit the group in one transaction; if the store refuses it, each batch alone."""
        stats: Counter = Counter()
        for _, record in group:
            stats.update(counters.replayed(record[2]))  # update, not +: the moves are negative too
        try:
            self._writer.write(_joined(group), stats, operation=_marking_replayed([r[0] for _, r in group])).result()
        except (Overloaded, pa.ArrowException) as error:  # refused, or batches whose columns cannot join
            if len(group) > 1:
                for pending in group:
                    self._commit([pending], outcome)
                return
            (path, (number, _, _)), = group
            reason = str(error.__cause__ or error)
            spool.reason_path(path).write_text(reason)
            outcome.refused.append({"record": number, "reason": reason})
            return
        for path, record in group:
            outcome.replayed.append(_described(path, record))
            _remove(path)

    def _files(self) -> Iterator[tuple[Path, spool.Record]]:
        for path in sorted(self.folder.glob("*.spool")):
            for record in spool.read_records(path):
                yield path, record

    def _replayed(self) -> set[int]:
        with self._reader() as cursor:
            return {number for (number,) in cursor.execute("SELECT record FROM set_aside_replayed").fetchall()}


def item_count(batches: list[dict]) -> int:
    """The items of batches as `SetAside.batches()` describes them, all services together."""
    return sum(sum(batch["items"].values()) for batch in batches)


def _joined(group: list[Pending]) -> dict[str, pa.Table]:
    """The group's rows, one table per name (a column some batches lack is null in their rows)."""
    by_name: dict[str, list[pa.Table]] = {}
    for _, (_, tables, _) in group:
        for name, table in tables.items():
            by_name.setdefault(name, []).append(table)
    return {name: pa.concat_tables(tables, promote_options="default") for name, tables in by_name.items()}


def _marking_replayed(numbers: list[int]) -> Callable[[duckdb.DuckDBPyConnection], None]:
    """The operation that records, in the transaction committing their rows, that the batches are replayed."""
    def mark(con: duckdb.DuckDBPyConnection) -> None:
        con.executemany("INSERT INTO set_aside_replayed VALUES (?)", [[number] for number in numbers])
    return mark


def _described(path: Path, record: spool.Record) -> dict:
    number, tables, stats = record
    reason, written = spool.reason_path(path), path.stat()
    return {
        "record": number,
        "set_aside_at": datetime.fromtimestamp(written.st_mtime, UTC).isoformat(timespec="seconds"),
        "bytes": written.st_size,
        "rows": {name: table.num_rows for name, table in tables.items()},
        "items": {service: count for (service, counter), count in stats.items() if counter == "accepted"},
        "reason": reason.read_text() if reason.exists() else "",
    }


def _remove(path: Path) -> None:
    spool.reason_path(path).unlink(missing_ok=True)
    path.unlink(missing_ok=True)
