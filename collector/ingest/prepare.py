"""The CPU-heavy half of ingestion, runnable in a worker process: body -> Arrow tables + verdicts.

Parsing and mapping cost ~15 µs per envelope in Python, which one core cannot do at the rate we
promise, so large bodies are prepared in a process pool and only Arrow tables (cheap to pass
between processes) come back to the process that owns DuckDB. Small bodies are prepared inline,
where a round trip to a worker would cost more than it saves. Both run this same code.

Every item ends in exactly one of: accepted (rows stored), acknowledged but dropped (service
disabled), or rejected (with a reason); `stats` records which, per service.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa

from collector.ingest import compiled, otlp
from collector.ingest.body import BadItem, decompress, split_items
from collector.ingest.cap import ITEM_LIMIT, Spill, cap_row, row_size
from collector.ingest.columnar import map_fast
from collector.ingest.envelope import map_envelope
from collector.ingest.item_ids import item_ids
from collector.ingest.stored_form import DYNAMIC_SOURCES, INT_MAX, INT_MIN, NO_CLIENT_IP, owner_columns
from collector.ingest.values import ItemError, as_int, dumps_dynamic
from collector.store.schema import TABLES

UNKNOWN_SERVICE = "*"
"""Counters of items whose iKey names no service are kept under this name."""

Routing = dict[str, tuple[str, bool]]
"""Lower-cased instrumentation key -> (service name, enable_app_insights)."""

_DYNAMIC = {name: tuple(c.name for c in t.columns if c.kql_type == "dynamic") for name, t in TABLES.items()}
_INT = {name: tuple(c.name for c in t.columns if c.kql_type == "int") for name, t in TABLES.items()}


@dataclass
class Prepared:
    received: int = 0
    accepted: int = 0
    errors: list[dict] = field(default_factory=list)
    tables: dict[str, pa.Table] = field(default_factory=dict)
    stats: Counter = field(default_factory=Counter)

    # Prepared crosses from a pool worker to the collector: its tables travel as Arrow IPC streams,
    # ten times cheaper to write and read than pickling the tables themselves.
    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["tables"] = {name: _ipc_bytes(table) for name, table in self.tables.items()}
        return state

    def __setstate__(self, state: dict) -> None:
        state["tables"] = {name: pa.ipc.open_stream(data).read_all() for name, data in state["tables"].items()}
        self.__dict__.update(state)


def _ipc_bytes(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def warm_up() -> None:
    """Load what pyarrow loads lazily: its first conversion of Python values imports pandas (~0.2 s),
    which would otherwise fall on the first request each process serves."""
    pa.array([0], pa.int64())


def worker_init(parent_pid: int) -> None:
    """Set up an ingestion worker process: it exits when the collector is gone (even after a kill -9,
    which runs no shutdown), and its garbage collector leaves the long-lived imports alone and runs
    less often (each task's objects die with it; cycles are rare)."""
    warm_up()
    gc.freeze()
    gc.set_threshold(50_000, 50, 50)

    def exit_with_parent() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=exit_with_parent, name="exit-with-collector", daemon=True).start()


def prepare_body(body: bytes, content_encoding: str | None, routing: Routing, blob_dir: Path) -> Prepared:
    """Decompress and split a track body and prepare its items; BodyError if unreadable as a whole.
    The compiled path (compiled.py) takes the plain items when it is built; the rest, or the whole
    body where it declines, take the Python path."""
    data = decompress(body, content_encoding)
    read = compiled.read_body(data, routing)
    if read is None:
        return prepare_items(split_items(data), routing, blob_dir)
    return _with_rest(data, read, routing, blob_dir)


def prepare_compiled(
    body: bytes, content_encoding: str | None, routing: Routing, blob_dir: Path, most_left: float = 1.0
) -> Prepared | None:
    """prepare_body where the compiled path reads the body and leaves at most `most_left` of its
    items to the Python path; None otherwise (or where it is not built), and the body is then the
    caller's to prepare another way (threads.py: in the pool)."""
    data = decompress(body, content_encoding)
    read = compiled.read_body(data, routing)
    if read is None or len(read[3]) > most_left * read[0]:
        return None
    return _with_rest(data, read, routing, blob_dir)


def _with_rest(data: bytes, read: tuple, routing: Routing, blob_dir: Path) -> Prepared:
    """The compiled path's tables with the items it left prepared by the Python path."""
    count, tables, stats, rest, spans = read
    prepared = prepare_items(compiled.items_at(data, spans, rest), routing, blob_dir) if rest else Prepared()
    for error in prepared.errors:
        error["index"] = rest[error["index"]]
    prepared.received = count
    prepared.accepted += sum(table.num_rows for table in tables.values())
    prepared.stats.update(stats)
    for name, table in tables.items():
        other = prepared.tables.get(name)
        prepared.tables[name] = table if other is None else pa.concat_tables([table, other])
    return prepared


def prepare_otlp(
    signal: str, body: bytes, content_encoding: str | None, content_type: str, ikey: str, routing: Routing,
    blob_dir: Path,
) -> Prepared:
    """Decode an OTLP body, convert it to envelopes as Azure Monitor's exporter would, and prepare
    those; OtlpDecodeError if the body is not OTLP."""
    message = otlp.decode_otlp(signal, decompress(body, content_encoding), content_type)
    return prepare_items(otlp.CONVERTERS[signal](message, ikey), routing, blob_dir)


def prepare_items(items: list[object], routing: Routing, blob_dir: Path, fast: bool = True) -> Prepared:
    """Map the plain items column-wise (columnar.py) and the rest one by one; `fast=False` maps
    every item one by one (the reference the fast path is tested against)."""
    prepared = Prepared(received=len(items))
    ids = item_ids()
    if fast:
        mapped = map_fast(items, routing)
        prepared.accepted, prepared.stats, rest = mapped.accepted, mapped.stats, mapped.rest
        tables = {name: [table] for name, table in mapped.tables.items()}
    else:
        rest, tables = range(len(items)), {}
    rows: dict[str, list[dict]] = {}
    spill = Spill(blob_dir)
    for index in rest:
        reason = _prepare_item(items[index], routing, rows, prepared.stats, spill, ids)
        if reason is None:
            prepared.accepted += 1
        else:
            prepared.errors.append({"index": index, "statusCode": 400, "message": reason})
    for name, table_rows in rows.items():
        tables.setdefault(name, []).append(TABLES[name].to_arrow(table_rows))
    prepared.tables = {name: _one_table(parts) for name, parts in tables.items()}
    return prepared


def _one_table(parts: list[pa.Table]) -> pa.Table:
    return parts[0] if len(parts) == 1 else pa.concat_tables(parts)


def _prepare_item(
    item: object, routing: Routing, rows: dict, stats: Counter, spill: Spill, ids: Iterator[str]
) -> str | None:
    """Add the item's rows and counters; the rejection reason, or None when acknowledged."""
    if isinstance(item, BadItem):
        _count(stats, UNKNOWN_SERVICE, "rejected:malformed")
        return item.message
    try:
        mapped = map_envelope(item)
        route = routing.get(mapped[0][1]["iKey"].lower())
        if route is None:
            _count(stats, UNKNOWN_SERVICE, "rejected:invalid instrumentation key")
            return "invalid instrumentation key"
        service, enabled = route
        if not enabled:
            _count(stats, service, "dropped:disabled")
            return None
        for table, row in mapped:
            _stored_values(table, row)
    except ItemError as error:
        _count(stats, _service_of(item, routing), "rejected:invalid item")
        return str(error)
    _count(stats, service, "accepted")
    for table, row in mapped:
        row["itemId"] = next(ids)
        _store_form(table, row, service, item, stats, spill)
        rows.setdefault(table, []).append(row)
    return None


def _count(stats: Counter, service: str, outcome: str) -> None:
    stats[(service, "received")] += 1
    stats[(service, outcome)] += 1


def _service_of(item: object, routing: Routing) -> str:
    ikey = item.get("iKey") if isinstance(item, dict) else None
    route = routing.get(ikey.lower()) if isinstance(ikey, str) else None
    return route[0] if route else UNKNOWN_SERVICE


def _stored_values(table: str, row: dict) -> None:
    """Make the mapped values those the columns store (dynamic ones as JSON text), or the item's
    error: the mapper bounds nesting (stored_form.MAX_NESTING) and integers (a 32-bit int) where it
    reads each field, naming it; this is the rule itself, checked where the row takes its stored
    form, so that no value of one item can fail the whole batch's conversion to Arrow."""
    for column in _DYNAMIC[table]:
        row[column] = dumps_dynamic(row.get(column), DYNAMIC_SOURCES.get(column, column))
    for column in _INT[table]:
        value = row.get(column)
        if value is not None and not INT_MIN <= value <= INT_MAX:
            as_int(value, column, column)


def _store_form(table: str, row: dict, service: str, item: object, stats: Counter, spill: Spill) -> None:
    dynamic = _DYNAMIC[table]
    row.update(owner_columns(service, row["iKey"]))
    row.setdefault("client_IP", NO_CLIENT_IP)
    size = row_size(row)
    if size > ITEM_LIMIT:
        cap_row(row, dynamic, size, spill.write(service, row["itemId"], item))
        stats[(service, "capped")] += 1
        stats[(service, "spilled")] += 1
