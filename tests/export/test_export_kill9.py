"""kill -9 the collector in the middle of a large export, restart it, and every item is exported
exactly once (count and itemIds), to a folder and to Azurite.

The kill lands at a random point: while DuckDB writes a blob, while the sink publishes it, or
between the publish and the checkpoint commit (the window test_export_crash_windows.py covers
deterministically). Whatever it hit, the restarted scheduler finishes the job with no gap and no
second copy.
"""

from __future__ import annotations

import time
import uuid
from functools import lru_cache

import pytest
from collector_process import CollectorProcess, exports_under
from exported import assert_exactly_once, check_names, folder_blobs, items_of, wait_status
from items import lines, mixed_items

ITEMS = 200_000
PER_BLOB = 5_000
IMPORT_CHUNK = 20_000
LATE = 2_000
TOTAL = ITEMS + LATE


@lru_cache(maxsize=1)
def _telemetry() -> tuple[list[bytes], frozenset[str]]:
    items = mixed_items(ITEMS, seed=99)
    return lines(items), frozenset(item["itemId"] for item in items)


def _late_items() -> list[dict]:
    return mixed_items(LATE, seed=100, max_age_days=30)


def _late_lines() -> list[bytes]:
    return lines(_late_items())


def _late_ids() -> set[str]:
    return {item["itemId"] for item in _late_items()}


@pytest.mark.parametrize("destination", ["folder", "azurite"])
def test_kill_9_during_export_then_restart_exports_every_item_exactly_once(tmp_path, azurite, destination):
    collector = CollectorProcess(tmp_path / "data", env=exports_under(tmp_path)).start()
    try:
        service = collector.create_service("kill9")
        name = service["name"]
        payload, ids = _telemetry()
        for start in range(0, ITEMS, IMPORT_CHUNK):
            assert collector.import_rows(name, payload[start:start + IMPORT_CHUNK])["errors"] == []
        settings, read_back = _destination(destination, tmp_path, azurite)
        with collector.admin as client:
            client.put(f"/api/services/{name}/export",
                       json={**settings, "interval_seconds": 3600, "max_items_per_blob": PER_BLOB}).raise_for_status()
            at_kill = wait_status(client, name, lambda s: s["items_exported"] >= ITEMS // 3, interval=0.02)
        collector.kill()
        assert at_kill["items_exported"] < ITEMS, "the export finished before the kill: nothing was tested"

        collector.start()  # the scheduler resumes on start: pending plan first, then the rest
        started = time.monotonic()  # ingestion is not held up by the export resuming meanwhile
        assert collector.import_rows(name, _late_lines())["imported"] == len(_late_lines())
        assert time.monotonic() - started < 10
        with collector.admin as client:  # the late items may have missed the resumed pass: one more run
            assert client.post(f"/api/services/{name}/export/run", params={"wait": "true"}).json()["state"] == "done"
            done = wait_status(client, name, lambda s: s["lag"] == 0 and s["items_exported"] >= TOTAL, timeout=120)
    finally:
        collector.stop()
    blobs = read_back()
    assert done["items_exported"] == TOTAL
    check_names(blobs, service)
    assert_exactly_once(items_of(blobs), set(ids) | _late_ids())
    if destination == "folder":
        assert not list((tmp_path / "out").rglob("*.tmp")), "staging files left after restart"


def _destination(kind: str, tmp_path, azurite):
    if kind == "folder":
        return {"destination": str(tmp_path / "out")}, lambda: folder_blobs(tmp_path / "out")
    container = f"kill9-{uuid.uuid4().hex[:12]}"
    return ({"destination": azurite.connection_string, "container": container},
            lambda: azurite.blobs(container))
