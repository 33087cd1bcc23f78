"""From envelopes to committed rows and the App Insights track response.

Each item is mapped, routed to its service by iKey, capped if oversized, and counted; the rows of
all accepted items are committed in one write before the answer goes out. Every item ends in exactly
one of: accepted (stored), acknowledged but dropped (service disabled), or rejected (with a reason),
and the per-service counters record which, so a user can prove where every item went.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass, field

from collector.ingest.body import BadItem
from collector.ingest.cap import ITEM_LIMIT, Spill, cap_row, row_size
from collector.ingest.envelope import ItemError, dumps_dynamic, map_envelope
from collector.store.schema import SERVICE_COLUMN, TABLES
from collector.store.services import Registry
from collector.store.writer import Batch, Writer

UNKNOWN_SERVICE = "*"
"""Counters of items whose iKey names no service are kept under this name."""

_DYNAMIC = {name: tuple(c.name for c in t.columns if c.kql_type == "dynamic") for name, t in TABLES.items()}


@dataclass
class TrackResult:
    received: int = 0
    accepted: int = 0
    errors: list[dict] = field(default_factory=list)

    @property
    def status_code(self) -> int:
        if not self.errors:
            return 200
        return 206 if self.accepted else 400

    def to_json(self) -> dict:
        return {"itemsReceived": self.received, "itemsAccepted": self.accepted, "errors": self.errors}


class Pipeline:
    def __init__(self, registry: Registry, writer: Writer, spill: Spill):
        self.registry = registry
        self.writer = writer
        self.spill = spill

    async def ingest(self, items: list[object]) -> TrackResult:
        """Map, route and commit; raises writer.Overloaded before anything is written."""
        result = TrackResult(received=len(items))
        batch = Batch()
        for index, item in enumerate(items):
            reason = self._ingest_item(item, batch)
            if reason is None:
                result.accepted += 1
            else:
                result.errors.append({"index": index, "statusCode": 400, "message": reason})
        if batch.rows or batch.stats:
            await asyncio.wrap_future(self.writer.submit(batch))
        return result

    def _ingest_item(self, item: object, batch: Batch) -> str | None:
        """Add the item's rows and counters to the batch; the rejection reason, or None."""
        if isinstance(item, BadItem):
            batch.stats[(UNKNOWN_SERVICE, "received")] += 1
            batch.stats[(UNKNOWN_SERVICE, "rejected:malformed")] += 1
            return item.message
        try:
            rows = map_envelope(item)
        except ItemError as error:
            service = self._service_name_of(item)
            batch.stats[(service, "received")] += 1
            batch.stats[(service, "rejected:invalid item")] += 1
            return str(error)
        service = self.registry.by_instrumentation_key(rows[0][1]["iKey"])
        if service is None:
            batch.stats[(UNKNOWN_SERVICE, "received")] += 1
            batch.stats[(UNKNOWN_SERVICE, "rejected:invalid instrumentation key")] += 1
            return "invalid instrumentation key"
        stats = batch.stats
        stats[(service.name, "received")] += 1
        if not service.enable_app_insights:
            stats[(service.name, "dropped:disabled")] += 1
            return None
        stats[(service.name, "accepted")] += 1
        for table, row in rows:
            self._store_form(table, row, service.name, item, stats)
            batch.rows.setdefault(table, []).append(row)
        return None

    def _service_name_of(self, item: object) -> str:
        ikey = item.get("iKey") if isinstance(item, dict) else None
        service = self.registry.by_instrumentation_key(ikey) if isinstance(ikey, str) else None
        return service.name if service else UNKNOWN_SERVICE

    def _store_form(self, table: str, row: dict, service: str, item: object, stats: Counter) -> None:
        dynamic = _DYNAMIC[table]
        for column in dynamic:
            row[column] = dumps_dynamic(row.get(column))
        row[SERVICE_COLUMN] = service
        row["appName"] = service
        row["appId"] = row["iKey"]
        row.setdefault("client_IP", "0.0.0.0")
        size = row_size(row)
        if size > ITEM_LIMIT:
            reference = self.spill.write(service, row["itemId"], item)
            cap_row(row, dynamic, size, reference)
            stats[(service, "capped")] += 1
            stats[(service, "spilled")] += 1
