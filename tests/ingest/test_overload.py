"""Overload is answered 503 with Retry-After (SDKs keep and resend), never by dropping."""

import gzip
import os
import signal
from concurrent.futures import ThreadPoolExecutor

import httpx
from collector_process import CollectorProcess, children
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


def _pool_body(ikey: str, i: int) -> bytes:
    """A batch the compiled path declines whole (an integer of 19 digits, which it leaves to
    orjson), so that the pool prepares it: the bodies it reads are prepared in threads instead."""
    text = gzip.decompress(batch_body(ikey, f"op-{i}", i))
    assert b'"properties": {' in text
    return gzip.compress(text.replace(b'"properties": {', b'"properties": {"big": 1234567890123456789, ', 1))


def _workers_of(pid: int) -> list[int]:
    return [child for child, args in children(pid) if "spawn_main" in args]


def test_a_dead_ingestion_worker_costs_one_503_not_the_service(tmp_path):
    collector = CollectorProcess(tmp_path / "data").start()
    try:
        service = collector.create_service("worker-crash")
        headers = {"content-encoding": "gzip", "content-type": "application/x-json-stream"}
        post = lambda i: httpx.post(f"{collector.url}/v2/track", headers=headers, timeout=60,  # noqa: E731
                                    content=_pool_body(service["instrumentation_key"], i))
        assert post(0).status_code == 200  # large bodies are prepared in the pool
        workers = _workers_of(collector.process.pid)
        assert workers, "the collector runs no ingestion workers"
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        codes = [post(i).status_code for i in range(1, 4)]
        assert codes[0] in (200, 503) and codes[1:] == [200, 200]
        with collector.admin as admin:
            stats = admin.get(f"/api/services/{service['name']}/stats").json()
        assert stats["accepted"] == (1 + codes.count(200)) * ITEMS_PER_BATCH
    finally:
        collector.stop()
