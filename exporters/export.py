"""One export pass of one service: for each record type, blob after blob, plan -> write -> publish ->
advance, until nothing is left past the checkpoint.

The order is what makes export exactly once: the plan (range and name) is committed before the
blob is written, and the checkpoint advances only after the sink has published it. A crash before
the plan commits leaves nothing; after it, the next pass finds the plan and rewrites the same
range under the same name, replacing any blob a previous attempt published.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import duckdb

from collector.store.schema import SEQ_COLUMN, SERVICE_COLUMN
from collector.store.services import Service
from exporters.checkpoints import Checkpoint, Checkpoints, Plan
from exporters.formats import BlobRange, blob_name, write_ndjson
from exporters.settings import RECORD_TYPES, ExportSettings
from exporters.sinks import Sink

BlobDone = Callable[[str, int], None]
"""Called after each published blob with its record type and item count (progress, status)."""


def export_service(
    cursor: duckdb.DuckDBPyConnection,
    checkpoints: Checkpoints,
    service: Service,
    settings: ExportSettings,
    sink: Sink,
    on_blob: BlobDone = lambda record_type, items: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Export everything past the service's checkpoints; the number of items exported."""
    exported = 0
    for record_type in settings.types:
        exported += _export_type(cursor, checkpoints, service, record_type, settings.max_items_per_blob, sink, on_blob, should_stop)
    return exported


def _export_type(cursor, checkpoints: Checkpoints, service: Service, record_type: str, max_items: int,
                 sink: Sink, on_blob: BlobDone, should_stop) -> int:
    exported = 0
    while not should_stop():
        current = checkpoints.load(cursor, service.name).get(record_type, Checkpoint())
        plan = current.pending or _next_plan(cursor, service, record_type, current.seq, max_items)
        if plan is None:
            return exported
        if current.pending is None:
            checkpoints.plan(service.name, record_type, current, plan)
        items = _write(cursor, service, record_type, plan, sink)
        checkpoints.advance(service.name, record_type, plan, items)
        exported += items
        on_blob(record_type, items)
    return exported


def _next_plan(cursor, service: Service, record_type: str, after: int, max_items: int) -> Plan | None:
    """The next blob's range: up to max_items of the service's rows past `after`, in `_seq` order."""
    table = RECORD_TYPES[record_type]
    first, last, items = cursor.execute(
        f'SELECT min(s), max(s), count(*) FROM (SELECT "{SEQ_COLUMN}" AS s FROM "{table.name}" '
        f'WHERE "{SERVICE_COLUMN}" = ? AND "{SEQ_COLUMN}" > ? ORDER BY s LIMIT ?)',
        [service.name, after, max_items],
    ).fetchone()
    if not items:
        return None
    span = BlobRange(first, last, items)
    written = datetime.now(timezone.utc)
    return Plan(span, blob_name(service.name, service.instrumentation_key, record_type, span, written))


def _write(cursor, service: Service, record_type: str, plan: Plan, sink: Sink) -> int:
    """Stage and publish the plan's blob; its item count. A range whose rows are gone (retention
    with export disabled) publishes nothing and just moves the checkpoint on."""
    staged = sink.staging_file()
    try:
        items = write_ndjson(cursor, RECORD_TYPES[record_type], service.name, plan.span, staged)
        if items:
            sink.publish(staged, plan.name)
        return items
    finally:
        staged.unlink(missing_ok=True)


def pending_items(cursor: duckdb.DuckDBPyConnection, service: str, types: list[str], checkpoints: dict[str, Checkpoint]) -> dict[str, int]:
    """Items not yet exported, by record type: the lag."""
    lag = {}
    for record_type in types:
        after = checkpoints.get(record_type, Checkpoint()).seq
        (count,) = cursor.execute(
            f'SELECT count(*) FROM "{RECORD_TYPES[record_type].name}" WHERE "{SERVICE_COLUMN}" = ? AND "{SEQ_COLUMN}" > ?',
            [service, after],
        ).fetchone()
        lag[record_type] = int(count)
    return lag
