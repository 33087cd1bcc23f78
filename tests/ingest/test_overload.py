"""Overload is answered 503 with Retry-After (SDKs keep and resend), never by dropping."""

from concurrent.futures import ThreadPoolExecutor

import httpx

from collector_process import CollectorProcess
from loader import ITEMS_PER_BATCH, batch_body


def test_a_writer_behind_answers_503_retry_after_and_stores_only_what_it_acknowledged(tmp_path):
    collector = CollectorProcess(tmp_path / "data", env={"INSIGHTS_MAX_PENDING_ROWS": str(ITEMS_PER_BATCH)}).start()
    try:
        service = collector.create_service("overload")
        bodies = [batch_body(service["instrumentation_key"], f"op-{i}", i) for i in range(24)]
        headers = {"content-encoding": "gzip", "content-type": "application/x-json-stream"}
        with ThreadPoolExecutor(12) as pool:
            responses = list(pool.map(lambda b: httpx.post(f"{collector.url}/v2/track", content=b, headers=headers, timeout=60), bodies))
        codes = [r.status_code for r in responses]
        assert set(codes) <= {200, 503} and 503 in codes and 200 in codes
        assert all(r.headers["retry-after"] == "1" for r in responses if r.status_code == 503)
        with collector.admin as admin:
            stats = admin.get(f"/api/services/{service['name']}/stats").json()
        assert stats["accepted"] == codes.count(200) * ITEMS_PER_BATCH
        rows = collector.query("union traces, requests, dependencies, exceptions, customMetrics | count", service=service["name"])
        assert rows[0]["Count"] == codes.count(200) * ITEMS_PER_BATCH
    finally:
        collector.stop()
