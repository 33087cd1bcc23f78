"""Two collector processes on one ClickHouse store (the stand-in: no ClickHouse server can run here),
each with a real SDK sending to it: a service made through one works through the other, and export
runs on exactly one of them under the lease, exporting every acknowledged item once, even when the
lease holder is killed mid-way and the other takes over."""

from __future__ import annotations

import sys
import threading
import uuid
from pathlib import Path

import orjson
import pytest
from scaleout import Sender, collector_pair, connection_string

from collector.client import Webservice, Workspace

sys.path.insert(0, str(Path(__file__).parents[1] / "export"))
from azurite import Azurite  # noqa: E402
from store_helpers import eventually  # noqa: E402


@pytest.fixture(scope="module")
def collectors(clickhouse_server, tmp_path_factory):
    with collector_pair(clickhouse_server, "scaleout", tmp_path_factory.mktemp("scaleout")) as pair:
        yield pair


@pytest.fixture(scope="module")
def azurite(tmp_path_factory):
    emulator = Azurite(tmp_path_factory.mktemp("azurite-scaleout")).start()
    yield emulator
    emulator.stop()



def test_scaleout_a_service_made_through_one_collector_works_through_the_other(collectors):
    first, second = collectors
    service = first.create_service("shared-keys")
    name = service["name"]
    with second.client({"x-api-key": service["api_key"]}) as client:
        # the other collector reads services from the store every 2 s: the key works there within seconds
        assert eventually(lambda: client.get(f"/api/services/{name}").status_code == 200, timeout=30)
    sender = Sender(connection_string(second, service), "second")
    assert sender.send_batch(5)
    # a key rotated through the second stops working on the first
    with second.admin as client:
        rotated = client.post(f"/api/services/{name}/keys/rotate").json()
    with first.client({"x-api-key": service["api_key"]}) as old, first.client({"x-api-key": rotated["api_key"]}) as new:
        assert eventually(lambda: old.get(f"/api/services/{name}").status_code == 401 and
                           new.get(f"/api/services/{name}").status_code == 200, timeout=30)
    # console lines sent to the first are read through the second, with the SDK
    with first.client({"x-instrumentation-key": service["instrumentation_key"]}) as wrapper:
        wrapper.post("/api/logs", content=b'{"line": "scored on the first", "stream": "stdout"}\n').raise_for_status()
    assert "scored on the first" in Webservice(Workspace(second.url, api_key=rotated["api_key"]), name).get_logs(lines=10)
    # counters add up over both collectors
    with first.admin as client:
        stats = eventually(lambda: (s := client.get(f"/api/services/{name}/stats").json()).get("received", 0) >= 5 and s,
                            timeout=30)
    assert stats["accepted"] >= 5, stats


def _holder(collectors, name: str):
    """The collector process the export status names as exporting (its pid is in the lease holder id)."""
    with collectors[0].admin as client:
        holder = client.get(f"/api/services/{name}/export/status").json().get("exporting_collector") or ""
    return next((c for c in collectors if c.process and f":{c.process.pid}:" in holder), None)


def _exported_ids(azurite, container: str) -> list[str]:
    try:
        blobs = azurite.blobs(container)
    except Exception:  # noqa: BLE001 - the container appears with the first blob
        return []
    return [orjson.loads(line)["id"] for data in blobs.values() for line in data.splitlines() if line.strip()]


def test_scaleout_export_runs_once_over_both_collectors_and_survives_killing_the_holder(collectors, azurite):
    first, second = collectors
    service = first.create_service("shared-export")
    name = service["name"]
    container = f"scaleout-{uuid.uuid4().hex[:10]}"
    with second.admin as client:  # configured through the other collector: settings live in the store
        assert eventually(lambda: client.get(f"/api/services/{name}").status_code == 200, timeout=30)
        client.put(f"/api/services/{name}/export", json={
            "destination": azurite.connection_string, "container": container, "types": ["Requests"],
            "interval_seconds": 1, "max_items_per_blob": 40}).raise_for_status()
    senders = [Sender(connection_string(c, service), f"sender-{i}") for i, c in enumerate(collectors)]

    def send(sender: Sender, batches: int, stop: threading.Event) -> None:
        for _ in range(batches):
            if stop.is_set():
                return
            sender.send_batch(20)

    # phase 1: both collectors ingest at once; one of them exports
    stop = threading.Event()
    threads = [threading.Thread(target=send, args=(sender, 10, stop)) for sender in senders]
    for thread in threads:
        thread.start()
    holder = eventually(lambda: _holder(collectors, name), timeout=30)
    assert holder is not None, "no collector took the export lease"
    assert eventually(lambda: len(_exported_ids(azurite, container)) > 0, timeout=60), "nothing exported"
    # phase 2: the holder is killed (kill -9) while both senders are still sending; its sender's
    # items that were not acknowledged may or may not be stored, so they may or may not be exported
    holder.kill()
    stop.set()
    for thread in threads:
        thread.join()
    survivor = next(c for c in collectors if c is not holder)
    survivor_sender = senders[collectors.index(survivor)]
    assert survivor_sender.send_batch(20)
    acknowledged = set().union(*(s.acknowledged for s in senders))
    sent = set().union(*(s.sent for s in senders))
    # the survivor takes the lease over and exports the rest, the dead holder's pending blob included
    assert eventually(lambda: acknowledged <= set(_exported_ids(azurite, container)), timeout=90), \
        "acknowledged items were never exported"
    with survivor.admin as client:
        status = eventually(lambda: (s := client.get(f"/api/services/{name}/export/status").json())["lag"] == 0 and s,
                             timeout=30)
    exported = _exported_ids(azurite, container)
    assert len(exported) == len(set(exported)), "an item was exported twice"
    assert acknowledged <= set(exported) <= sent
    assert status["items_exported"] == len(exported)
    assert f":{survivor.process.pid}:" in status["exporting_collector"]
