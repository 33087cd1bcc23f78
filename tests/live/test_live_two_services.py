"""Live metrics and the application map with real processes: the session's collector (`insights
up`), two `insights score` wrappers where `front` calls `back` once per request (and, when asked,
a closed port: a failing external dependency), a client reading the live stream through the SDK.
Nothing is mocked."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx
import pytest
from wrapper_process import Wrapper

from collector.client import ApiError, InsightsError, LiveMetrics, Workspace, application_map

SCRIPTS = Path(__file__).parent / "scripts"


class Traffic:
    """The two services and a tally of what was sent to `front`, for the map to be checked against."""

    def __init__(self, collector, front: Wrapper, back: Wrapper, services: dict):
        self.collector, self.front, self.back, self.services = collector, front, back, services
        self.sent: Counter = Counter()
        self.client = httpx.Client(timeout=30)

    def send(self, trace_id: str | None = None, **asks) -> httpx.Response:
        headers = {"traceparent": f"00-{trace_id}-{uuid.uuid4().hex[:16]}-01"} if trace_id else {}
        response = self.client.post(f"{self.front.url}/score", json=asks, headers=headers)
        self.sent["total"] += 1
        for ask in asks:
            self.sent[ask] += 1
        return response


@pytest.fixture(scope="module")
def traffic(collector, tmp_path_factory):
    back_service, front_service = collector.create_service("back"), collector.create_service("front")
    root = tmp_path_factory.mktemp("live")
    back = Wrapper(str(SCRIPTS / "back_score.py"), back_service, root / "back-spool").start()
    front = Wrapper(str(SCRIPTS / "front_score.py"), front_service, root / "front-spool",
                    env={"BACK_URL": back.url}).start()
    yield Traffic(collector, front, back, {"front": front_service, "back": back_service})
    front.stop()
    back.stop()


def _listen(live: LiveMetrics, events: queue.Queue, **narrow) -> None:
    """Read the stream in a thread: each event with the moment it arrived."""
    def read() -> None:
        try:
            for event in live.stream(**narrow):
                events.put((time.monotonic(), event))
        except InsightsError:
            pass  # the collector stopped at the end of the session
    threading.Thread(target=read, daemon=True).start()


def _first(events: queue.Queue, found, timeout: float):
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            arrived, event = events.get(timeout=left)
        except queue.Empty:
            break
        if found(event):
            return arrived, event
    return None, None


def test_the_stream_shows_a_failure_the_client_caused_within_two_seconds(traffic):
    ws = Workspace(traffic.collector.url, api_key=traffic.collector.admin_key)
    events: queue.Queue = queue.Queue()
    _listen(LiveMetrics(ws, traffic.services["front"]["name"]), events)
    assert _first(events, lambda event: True, 10)[1] is not None  # the stream is open
    for _ in range(5):
        assert traffic.send().status_code == 200
    trace_id = uuid.uuid4().hex
    assert traffic.send(trace_id=trace_id, fail=True).status_code == 500
    answered = time.monotonic()
    arrived, event = _first(events, lambda e: any(s.get("operation_Id") == trace_id for s in e["samples"]), 10)
    assert event is not None, "the failure never reached the stream"
    assert arrived - answered <= 2.0, f"the failure took {arrived - answered:.2f} s to reach the stream"
    sample = next(s for s in event["samples"] if s["operation_Id"] == trace_id)
    assert (sample["table"], sample["resultCode"], sample["success"]) == ("requests", "500", False)
    assert sample["cloud_RoleName"] == traffic.services["front"]["name"]
    counted = sum(second["requests"]["failed"] for second in event["seconds"])
    assert counted >= 1


def test_a_condition_samples_only_what_matches_and_counts_it(traffic):
    ws = Workspace(traffic.collector.url, api_key=traffic.collector.admin_key)
    live = LiveMetrics(ws, traffic.services["back"]["name"])
    events: queue.Queue = queue.Queue()
    _listen(live, events, condition='resultCode == "500" and duration >= 0')
    assert _first(events, lambda event: True, 10)[1] is not None
    traffic.send()
    traffic.send(back_fail=True)
    _, event = _first(events, lambda e: e["samples"], 10)
    assert event is not None and event["condition"] == 'resultCode == "500" and duration >= 0'
    assert {(s["table"], s["resultCode"]) for s in event["samples"]} == {("requests", "500")}
    assert sum(second["matched"] for second in event["seconds"]) == 1
    with pytest.raises(ApiError) as refused:
        live.snapshot(condition="durationn > 5")
    assert refused.value.status_code == 400 and "durationn" in refused.value.message


def test_each_instance_reports_its_processes_cpu_and_memory(traffic):
    ws = Workspace(traffic.collector.url, api_key=traffic.services["front"]["api_key"])  # the service's own key
    live = LiveMetrics(ws, traffic.services["front"]["name"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        instances = live.snapshot(seconds=5)["instances"]
        if instances and instances[0]["cpuPercent"] is not None:
            break
        time.sleep(0.5)
    (instance,) = instances
    assert instance["healthy"] and instance["role"] == traffic.services["front"]["name"]
    assert len(instance["processes"]) >= 2  # the supervisor and its scoring worker
    assert instance["memoryBytes"] > 10 * 2**20
    seconds = live.snapshot(seconds=5)["seconds"]
    assert len(seconds) == 5 and any(second["memoryBytes"] for second in seconds)


def test_keys_read_only_their_own_service(traffic):
    collector, services = traffic.collector, traffic.services
    own = httpx.Client(base_url=collector.url, headers={"x-api-key": services["back"]["api_key"]})
    assert own.get("/api/live", params={"service": services["front"]["name"]}).status_code == 404
    assert own.get("/api/map", params={"service": services["front"]["name"]}).status_code == 404
    assert httpx.get(f"{collector.url}/api/live", params={"service": services["back"]["name"]}).status_code == 401
    assert own.get("/api/live", params={"service": services["back"]["name"]}).status_code == 200
    nodes = {node["id"] for node in own.get("/api/map").json()["nodes"]}
    assert services["back"]["name"] in nodes and services["front"]["name"] not in nodes


def test_the_map_has_the_roles_and_calls_that_were_sent(traffic):
    for asks in [{}] * 6 + [{"back_fail": True}] * 3 + [{"external": True}] * 2 + [{"fail": True}]:
        traffic.send(**asks)
    front, back = traffic.services["front"]["name"], traffic.services["back"]["name"]
    ws = Workspace(traffic.collector.url, api_key=traffic.collector.admin_key)
    sent = traffic.sent
    deadline = time.monotonic() + 20
    while True:
        found = application_map(ws, timespan="PT15M", services=[front, back])
        edges = {(edge["source"], edge["target"]): edge for edge in found["edges"]}
        nodes = {node["id"]: node for node in found["nodes"]}
        complete = edges.get((front, back), {}).get("calls") == sent["total"] and \
            nodes.get(back, {}).get("requests") == sent["total"] and \
            nodes.get(front, {}).get("requests") == sent["total"]
        if complete or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert set(nodes) == {front, back, "127.0.0.1:9 (http)"}, nodes
    assert (nodes[front]["requests"], nodes[front]["failed"]) == (sent["total"], sent["fail"])
    assert (nodes[back]["requests"], nodes[back]["failed"]) == (sent["total"], sent["back_fail"])
    assert nodes[front]["instances"] == nodes[back]["instances"] == 1
    assert nodes["127.0.0.1:9 (http)"]["kind"] == "http"
    call = edges[(front, back)]
    assert (call["targetKind"], call["calls"], call["failed"]) == ("role", sent["total"], sent["back_fail"])
    external = edges[(front, "127.0.0.1:9 (http)")]
    assert (external["targetKind"], external["calls"], external["failed"]) == ("external", sent["external"],
                                                                              sent["external"])
    assert set(edges) == {(front, back), (front, "127.0.0.1:9 (http)")}
    assert nodes[back]["health"] == "failing"  # 3 of the calls it answered failed
    failures = ws.query(call["drilldown"]["failures"])
    assert len(failures) == sent["back_fail"] and set(failures["resultCode"]) == {"500"}


def test_the_cli_prints_the_live_seconds_and_the_map(traffic):
    env = {**os.environ, "INSIGHTS_URL": traffic.collector.url, "INSIGHTS_API_KEY": traffic.collector.admin_key}
    front, back = traffic.services["front"]["name"], traffic.services["back"]["name"]
    live = subprocess.run([sys.executable, "-m", "insights", "live", front, "--seconds", "2", "--json"], env=env,
                          capture_output=True, text=True, timeout=60)
    assert live.returncode == 0, live.stderr
    events = [json.loads(line) for line in live.stdout.splitlines()]
    assert len(events) == 2 and all(event["service"] == front for event in events)
    shown = subprocess.run([sys.executable, "-m", "insights", "map", "--timespan", "PT15M", "--service", front,
                            "--service", back, "--format", "json"], env=env, capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    edges = {(edge["source"], edge["target"]) for edge in json.loads(shown.stdout)["edges"]}
    assert edges == {(front, back), (front, "127.0.0.1:9 (http)")}
