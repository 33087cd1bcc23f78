"""Nothing collected is lost across a collector outage: the wrapper keeps collected rows in its
spool while the collector is down (scoring goes on), and sends them once it is back."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx
from collector_process import CollectorProcess
from wrapper_process import Wrapper

SCRIPTS = Path(__file__).parent / "scripts"
IRIS = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]


def test_rows_collected_while_the_collector_is_down_arrive_after(tmp_path):
    collector = CollectorProcess(tmp_path / "data").start()
    service = collector.create_service("mdc-outage")
    wrapper = Wrapper("echo_score.py", service, tmp_path / "spool")
    wrapper.script = str(SCRIPTS / "mdc_score.py")
    wrapper.start()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    try:
        collector.stop()
        for request_id in ids:
            started = time.perf_counter()
            answer = httpx.post(f"{wrapper.url}/score", json={"data": IRIS}, headers={"x-request-id": request_id})
            assert answer.status_code == 200 and time.perf_counter() - started < 1.0
        time.sleep(1.5)  # received and spooled while nobody listens
        collector.start()
        deadline = time.monotonic() + 30
        rows: list = []
        while len(rows) < 10 and time.monotonic() < deadline:
            time.sleep(0.5)
            rows = collector.query("modelData | project collection, correlationId", service["name"])
        assert sorted(r["collection"] for r in rows) == ["model_inputs"] * 5 + ["model_outputs"] * 5
        assert {r["correlationId"] for r in rows} == set(ids)
    finally:
        wrapper.stop()
        collector.stop()
