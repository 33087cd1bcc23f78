"""A query that needs more memory than the collector allows (INSIGHTS_MEMORY_LIMIT) is a clear 400,
and the collector keeps serving."""

import json
import time

import httpx
from collector_process import CollectorProcess


def test_a_query_over_the_memory_cap_is_a_400_naming_it(tmp_path):
    collector = CollectorProcess(tmp_path / "data", env={"INSIGHTS_MEMORY_LIMIT": "40MB"}).start()
    try:
        service = collector.create_service("mem-cap")
        for chunk in range(4):
            lines = [json.dumps({"itemType": "trace", "timestamp": "2026-11-23T16:50:00Z",
                                 "message": "x" * 2000 + str(chunk * 10_000 + i)}).encode() for i in range(10_000)]
            assert collector.import_rows(service["name"], lines)["imported"] == 10_000
        with collector.admin as admin:
            response = admin.post("/v1/apps/default/query", json={
                "query": "traces | extend m = strcat(message, message, message) | summarize make_list(m), make_set(m)"})
            assert response.status_code == 400
            message = response.json()["error"]["innererror"]["message"]
            assert message.startswith("the query needs more memory than it is allowed (")
            assert "INSIGHTS_MEMORY_LIMIT" in message
            assert _count_eventually(admin) == 40_000
        assert httpx.get(f"{collector.url}/healthz").status_code == 200
    finally:
        collector.stop()


def _count_eventually(admin: httpx.Client, timeout: float = 30) -> int:
    """Under a cap this small, the writer's checkpoint may find no memory while the big query runs:
    DuckDB then invalidates the database instance, and the collector restarts itself on a fresh one
    (refusing connections for a moment). Either way it must answer again, with nothing lost."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = admin.post("/v1/apps/default/query", json={"query": "traces | count"})
            if response.status_code == 200:
                return response.json()["tables"][0]["rows"][0][0]
            problem = response.text
        except httpx.TransportError as error:
            problem = repr(error)
        assert time.monotonic() < deadline, problem
        time.sleep(0.3)
