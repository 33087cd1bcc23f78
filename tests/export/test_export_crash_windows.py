"""Exactly once at each point a crash can hit, deterministically, in process: a sink that "crashes"
before or after publishing, then a fresh store, registry and scheduler on the same DuckDB file (as
after a restart), then a clean run. The kill -9 test does the same with a real process at a random
moment; this one makes sure the narrow window between publish and checkpoint is covered."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from exported import assert_exactly_once, items_of
from items import mixed_items

from collector.ingest.rows import row_from_json
from collector.store.database import Store
from collector.store.schema import SERVICE_COLUMN, TABLES
from collector.store.services import Registry
from exporters.scheduler import ExportScheduler
from exporters.settings import validate
from exporters.sinks import MemorySink


class Crash(RuntimeError):
    pass


class CrashingSink(MemorySink):
    """Publishes normally, except that publish number `at` crashes `when` = before|after storing the blob."""

    def __init__(self, blobs: dict, at: int, when: str):
        super().__init__()
        self.blobs, self.at, self.when = blobs, at, when

    def publish(self, staged: Path, name: str) -> None:
        self.publishes += 1
        if self.publishes == self.at and self.when == "before":
            raise Crash("crashed before the blob was written")
        self.blobs[name] = staged.read_bytes()
        staged.unlink()
        if self.publishes == self.at:
            raise Crash("crashed after the blob was written, before the checkpoint")


def _open(data_dir: Path, sink) -> tuple[Store, Registry, ExportScheduler]:
    store = Store(data_dir)
    with store.reader() as cursor:
        registry = Registry(cursor, store.writer)
    scheduler = ExportScheduler(store, registry, data_dir, sink_factory=lambda destination, data_dir: sink)
    scheduler.start()
    return store, registry, scheduler


def _insert(store: Store, service: str, items: list[dict]) -> None:
    rows: dict[str, list[dict]] = {}
    for item in items:
        table, row = row_from_json(orjson.loads(orjson.dumps(item)))
        row[SERVICE_COLUMN] = service
        rows.setdefault(table.name, []).append(row)
    store.writer.write({name: TABLES[name].to_arrow(r) for name, r in rows.items()}).result()


@pytest.mark.parametrize("when", ["before", "after"])
@pytest.mark.parametrize("at", [1, 2])
def test_a_crash_around_publish_rewrites_the_same_blob(tmp_path, at, when):
    """200 items a type, 150 a blob: publish 1 is a full Requests blob, publish 2 the partial one
    (50). Items that arrive before the restart would change a partial range recomputed from the
    checkpoint, so only the committed plan gives the rewrite the same range and name."""
    blobs: dict[str, bytes] = {}
    items = mixed_items(1_200, seed=31)
    meanwhile = mixed_items(360, seed=32)
    store, registry, scheduler = _open(tmp_path, CrashingSink(blobs, at, when))
    service = asyncio.run(registry.create("crashy"))
    _insert(store, service.name, items)
    asyncio.run(scheduler.configure(service.name, validate({"enabled": False, "max_items_per_blob": 150})))
    first = scheduler.request_run(service.name).future.result(timeout=30)
    assert first["state"] == "failed" and "crashed" in first["error"]
    names_before = set(blobs)
    _insert(store, service.name, meanwhile)
    scheduler.stop()
    store.close()

    store, registry, scheduler = _open(tmp_path, CrashingSink(blobs, at=0, when="never"))
    second = scheduler.request_run(service.name).future.result(timeout=30)
    status = scheduler.status(service.name)
    scheduler.stop()
    store.close()
    assert second["state"] == "done", second
    assert names_before <= set(blobs)  # the crashed blob was rewritten under its own name, not a new one
    assert_exactly_once(items_of(blobs), {item["itemId"] for item in items + meanwhile})
    assert (status["items_exported"], status["lag"]) == (1_560, 0)
