"""The application map and live metrics over two collector processes on one ClickHouse store (the
chdb stand-in: no ClickHouse server can run here): what reached either collector shows through
both. The map: a role's requests sent to one collector and the calls to it sent to the other are
one edge, read from either, equal to the map the KQL queries compute over the same rows. Live
metrics: a stream and a snapshot served by one collector count what the other received (the
Azure Monitor exporter sending to each), show its failures as samples and its instances, and the
other collector knows the service is watched (what it tells QuickPulse SDKs)."""

from __future__ import annotations

import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from scaleout import Sender, collector_pair, connection_string

from collector.client import CollectorUnreachable, LiveMetrics, Workspace, application_map

sys.path.insert(0, str(Path(__file__).parents[1] / "live"))
from store_helpers import eventually  # noqa: E402
from test_map_rollups import assert_same_map, maps, send, traffic  # noqa: E402


@pytest.fixture(scope="module")
def collectors(clickhouse_server, tmp_path_factory):
    with collector_pair(clickhouse_server, "livemap", tmp_path_factory.mktemp("livemap")) as pair:
        yield pair



def _known_to(collector, name: str) -> None:
    with collector.admin as client:  # services are reloaded from the store every 2 s
        assert eventually(lambda: client.get(f"/api/services/{name}").status_code == 200, timeout=30)


def test_the_map_shows_both_collectors_traffic_from_either(collectors):
    first, second = collectors
    front, back = first.create_service("map-front"), first.create_service("map-back")
    _known_to(second, back["name"])
    items = traffic(front, back, 200, seed=21)
    send(first, [item for item in items if item[0] == front["instrumentation_key"]])  # the caller's side
    send(second, [item for item in items if item[0] == back["instrumentation_key"]])  # the callee's side
    names = [front["name"], back["name"]]
    found, reference = maps(first, names, "PT3H")
    assert_same_map(found, reference)  # the map equals the KQL queries' over the same rows
    edges = {(e["source"], e["target"]): e for e in found["edges"]}
    assert edges[("front", "back")]["calls"] == 200  # the calls in one collector, their callee in the other
    assert edges[("front", "back")]["targetKind"] == "role"
    nodes = {n["id"]: n for n in found["nodes"]}
    assert set(nodes) == {"front", "back", "orders (database)", "api.example.com (http)"}
    assert nodes["front"]["requests"] == 200
    assert nodes["back"]["requests"] == sum(1 for key, _ in items if key == back["instrumentation_key"])
    assert {n["id"]: n["instances"] for n in found["nodes"] if n["kind"] == "role"} == {"front": 2, "back": 3}
    # the other collector's map, read with the SDK, is the same
    from_second = application_map(Workspace(second.url, api_key=second.admin_key), "PT3H", names)
    assert_same_map(from_second, found)


def _failed_request(ikey: str, number: int) -> dict:
    now = datetime.now(UTC).replace(tzinfo=None).isoformat() + "Z"
    return {"iKey": ikey, "time": now, "name": "Microsoft.ApplicationInsights.Request",
            "tags": {"ai.cloud.role": "worker-b", "ai.cloud.roleInstance": "b-1", "ai.operation.id": f"op-{number}"},
            "data": {"baseType": "RequestData", "baseData": {
                "ver": 2, "id": f"failed-on-b-{number}", "name": "POST /score", "duration": "00:00:00.250",
                "success": False, "responseCode": "500"}}}


def _totals(body: dict) -> tuple[int, int]:
    return (sum(s["requests"]["count"] for s in body["seconds"]),
            sum(s["requests"]["failed"] for s in body["seconds"]))


def test_live_metrics_served_by_one_collector_count_what_the_other_received(collectors):
    first, second = collectors
    service = first.create_service("live-merge")
    name = service["name"]
    _known_to(second, name)
    live = LiveMetrics(Workspace(first.url, api_key=service["api_key"]), name)
    events: list[dict] = []
    done = threading.Event()

    def listen() -> None:  # someone watches through the first collector
        try:
            for event in LiveMetrics(Workspace(first.url, api_key=service["api_key"]), name).stream():
                events.append(event)
                if done.is_set():
                    return
        except CollectorUnreachable:  # the collector stopped first
            return

    threading.Thread(target=listen, daemon=True).start()
    assert eventually(lambda: events, timeout=30), "the stream sent nothing"
    with second.client() as client:  # the second knows, and would tell a QuickPulse SDK sending to it
        assert eventually(lambda: client.post("/QuickPulseService.svc/ping", params={
            "ikey": service["instrumentation_key"]}).headers.get("x-ms-qps-subscribed") == "true", timeout=30)
    on_first, on_second = Sender(connection_string(first, service), "a"), Sender(connection_string(second, service), "b")
    assert on_first.send_batch(20) and on_second.send_batch(30)
    with second.client() as client:
        client.post("/v2.1/track", content=orjson.dumps([_failed_request(service["instrumentation_key"], n)
                                                          for n in range(5)])).raise_for_status()
    # the snapshot served by the first counts all 55 requests and the 5 failures the second received
    body = eventually(lambda: (b := live.snapshot(seconds=120)) and _totals(b) == (55, 5) and b, timeout=30)
    assert body, f"the first collector's live metrics never added up: {_totals(live.snapshot(seconds=120))}"
    failures = {f"failed-on-b-{n}" for n in range(5)}
    assert {s["id"] for s in body["samples"] if s.get("table") == "requests"} >= failures
    assert ("worker-b", "b-1") in {(i["role"], i["instance"]) for i in body["instances"]}
    # the stream served by the first shows the second's failures as samples; its seconds count
    # each item once (the second's when they were in within MAX_WAIT_S: live/sharing.py)
    assert eventually(lambda: failures <= {s["id"] for e in list(events) for s in e["samples"]}, timeout=15)
    assert 20 <= sum(_totals(event)[0] for event in list(events)) <= 55
    done.set()
    # and the second collector serves the same totals
    merged = LiveMetrics(Workspace(second.url, api_key=service["api_key"]), name)
    assert eventually(lambda: _totals(merged.snapshot(seconds=120)) == (55, 5), timeout=30)
