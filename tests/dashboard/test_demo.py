"""`insights demo` end to end: the real collector, `insights score` hosting the sample scikit-learn
model, the dashboard and the traffic generator; every chart's table gets data, and all stops."""

from __future__ import annotations

import time

import httpx
from collector_process import free_port

from insights.demo import FEATURES_SERVICE, SERVICE, Demo

EXPECTED = {
    "requests | summarize n=count() by resultCode": {"200", "400", "500"},
    "dependencies | summarize n=count() by success": {True},
    "exceptions | summarize n=count() by type": {"ValueError"},
    'traces | where customDimensions contains "input" | summarize n=count() by message': {"STDOUT"},
    "modelData | summarize n=count() by collection": {"model_inputs"},
}


def _seen(demo: Demo) -> dict[str, set]:
    seen = {}
    with httpx.Client(base_url=demo.collector_url, headers={"x-api-key": demo.key}, timeout=30) as client:
        for kql in EXPECTED:
            table = client.post("/v1/apps/default/query", json={"query": kql, "service": SERVICE}).json()["tables"][0]
            seen[kql] = {row[0] for row in table["rows"]}
    return seen


def _complete(seen: dict[str, set]) -> bool:
    return all(EXPECTED[kql] <= values for kql, values in seen.items())


def test_demo_fills_every_table_and_stops_cleanly(tmp_path):
    demo = Demo(tmp_path, free_port(), free_port(), free_port())
    try:
        demo.start()
        deadline = time.monotonic() + 60
        seen = _seen(demo)
        while not _complete(seen) and time.monotonic() < deadline:
            time.sleep(1)
            seen = _seen(demo)
        assert _complete(seen), seen
        # The feature lookup is a service of its own: the map has the model's call to it as an edge.
        with httpx.Client(base_url=demo.collector_url, headers={"x-api-key": demo.key}, timeout=30) as client:
            edges = {(e["source"], e["target"], e["targetKind"]) for e in client.get("/api/map").json()["edges"]}
        assert (SERVICE, FEATURES_SERVICE, "role") in edges, edges
        assert httpx.get(f"http://127.0.0.1:{demo.ports['dashboard']}/_stcore/health").text == "ok"
        # The printed link logs in once, as the admin.
        token = demo.login_link.split("?token=", 1)[1]
        redeem = f"{demo.collector_url}/api/dashboard/tokens/redeem"
        assert httpx.post(redeem, headers={"x-dashboard-token": token}).json()["api_key"] == demo.key
        assert httpx.post(redeem, headers={"x-dashboard-token": token}).status_code == 401
        assert sum(demo.traffic.sent.values()) > 0
    finally:
        demo.stop()
    assert all(process.poll() is not None for _, process in demo.processes)
