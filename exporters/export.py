"""One export pass of one service: for each record type, blob after blob, plan -> write -> publish ->
advance, until nothing is left past the checkpoint.

The order is what makes export exactly once: the plan (range and name) is committed before the
blob is written, and the checkpoint advances only after the sink has published it. A crash before
the plan commits leaves nothing; after it, the next pass finds the plan and rewrites the same
range under the same name, replacing any blob a previous attempt published.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from collector.store.exports import Checkpoint, ExportState, Plan
from collector.store.services import Service
from exporters.formats import blob_name
from exporters.modeldata_format import MODEL_DATA, plan_name, write_model_data
from exporters.settings import RECORD_TYPES, ExportSettings
from exporters.sinks import Sink

BlobDone = Callable[[str, int], None]
"""Called after each published blob with its record type and item count (progress, status)."""


def export_service(
    state: ExportState,
    service: Service,
    settings: ExportSettings,
    sink: Sink,
    on_blob: BlobDone = lambda record_type, items: None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Export everything past the service's checkpoints; the number of items exported."""
    exported = 0
    for record_type in settings.types:
        exported += _export_type(state, service, record_type, settings.max_items_per_blob, sink, on_blob, should_stop)
    return exported


def _export_type(state: ExportState, service: Service, record_type: str, max_items: int,
                 sink: Sink, on_blob: BlobDone, should_stop) -> int:
    exported = 0
    while not should_stop():
        current = state.checkpoints(service.name).get(record_type, Checkpoint())
        plan = current.pending or _next_plan(state, service, record_type, current.seq, max_items)
        if plan is None:
            return exported
        if current.pending is None:
            state.plan(service.name, record_type, current, plan)
        items = _write(state, service, record_type, plan, sink)
        state.advance(service.name, record_type, plan, items)
        exported += items
        on_blob(record_type, items)
    return exported


def _next_plan(state: ExportState, service: Service, record_type: str, after: int, max_items: int) -> Plan | None:
    """The next blob's range: up to max_items of the service's rows past `after`, in `_seq` order."""
    span = state.next_range(RECORD_TYPES[record_type], service.name, after, max_items)
    if span is None:
        return None
    written = datetime.now(UTC)
    if record_type == MODEL_DATA:  # Azure ML's layout (modeldata_format.py)
        return Plan(span, plan_name(service, span))
    return Plan(span, blob_name(service.name, service.instrumentation_key, record_type, span, written))


def _write(state: ExportState, service: Service, record_type: str, plan: Plan, sink: Sink) -> int:
    """Stage and publish the plan's blob; its item count. A range whose rows are gone (retention
    with export disabled) publishes nothing and just moves the checkpoint on."""
    if record_type == MODEL_DATA:
        return write_model_data(state, service, plan.span, sink)
    staged = sink.staging_file()
    try:
        items = state.write_ndjson(RECORD_TYPES[record_type], service.name, plan.span, staged)
        if items:
            sink.publish(staged, plan.name)
        return items
    finally:
        staged.unlink(missing_ok=True)


def pending_items(state: ExportState, service: str, types: list[str], checkpoints: dict[str, Checkpoint]) -> dict[str, int]:
    """Items not yet exported, by record type: the lag."""
    return {record_type: state.count_after(RECORD_TYPES[record_type], service, checkpoints.get(record_type, Checkpoint()).seq)
            for record_type in types}
