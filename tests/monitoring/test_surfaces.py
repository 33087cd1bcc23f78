"""The CLI (`insights monitor ...`, `insights service update --collect`), the SDK, the reference
of the 2 windows before, the scheduler, prediction drift, the upload limit, and (last: it stops and
restarts the collector) collected rows surviving a collector outage, against a real collector
process of their own (the scheduler looks for due windows every half second here)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from collector_process import CollectorProcess
from drift_data import frame
from wrapper_process import Wrapper

from collector.client import ModelMonitor, Workspace, payload_logging


@pytest.fixture(scope="module")
def fast_collector(tmp_path_factory):
    process = CollectorProcess(tmp_path_factory.mktemp("monitors") / "data", env={"INSIGHTS_MONITOR_TICK_S": "0.5",
                                                                                                 "INSIGHTS_REFERENCE_MAX_BYTES": "200000"}).start()
    yield process
    process.stop()


def _post(collector, service: dict, df, moment: datetime) -> None:
    lines = [orjson.dumps({"collection": "model_inputs", "time": moment.timestamp(),
                           "data": df.iloc[i:i + 200].to_json(orient="records")}) for i in range(0, len(df), 200)]
    answer = httpx.post(f"{collector.url}/api/modeldata", content=b"\n".join(lines),
                        headers={"x-instrumentation-key": service["instrumentation_key"]})
    assert answer.status_code == 200, answer.text


def _insights(collector, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "insights", *args], capture_output=True, text=True, env=env, timeout=60)


def test_cli_uploads_creates_runs_and_deletes(fast_collector, tmp_path):
    service = fast_collector.create_service("cli")
    name = service["name"]
    frame(3000, seed=11).to_parquet(tmp_path / "train.parquet")
    _post(fast_collector, service, frame(1500, seed=12, shift_a=1.0), datetime.now(UTC))
    uploaded = _insights(fast_collector, "monitor", "reference", "upload", str(tmp_path / "train.parquet"),
                         "--service", name, "--name", "train")
    assert uploaded.returncode == 0, uploaded.stderr
    assert "3000 rows" in uploaded.stdout and "categorical" in uploaded.stdout
    created = _insights(fast_collector, "monitor", "create", "inputs", "--service", name, "--reference", "train",
                        "--window", "1h", "--threshold", "psi=0.25")
    assert created.returncode == 0, created.stderr
    ran = _insights(fast_collector, "monitor", "run", "inputs", "--service", name)
    assert ran.returncode == 0, ran.stderr
    assert "drifted: a" in ran.stdout
    shown = _insights(fast_collector, "monitor", "show", "inputs", "--service", name)
    assert '"psi": 0.25' in shown.stdout and "normalized_wasserstein" in shown.stdout
    collect = _insights(fast_collector, "service", "update", name, "--collect", "request", "--sample-rate", "0.1")
    assert collect.returncode == 0, collect.stderr
    assert payload_logging(Workspace(fast_collector.url, fast_collector.admin_key), name)["collect"] == ["request"]
    assert _insights(fast_collector, "monitor", "delete", "inputs", "--service", name).returncode == 0
    listed = _insights(fast_collector, "monitor", "list", "--service", name)
    assert listed.returncode == 0 and "inputs" not in listed.stdout


def test_sdk_with_the_services_own_key_and_a_reference_from_past_windows(fast_collector):
    service = fast_collector.create_service("sdk")
    name = service["name"]
    end = datetime.now(UTC).replace(microsecond=0)
    _post(fast_collector, service, frame(2000, seed=21), end - timedelta(minutes=150))  # reference: 2 windows before
    _post(fast_collector, service, frame(2000, seed=22, shift_c=True), end - timedelta(minutes=30))
    ws = Workspace(fast_collector.url, service["api_key"])
    monitor = ModelMonitor.create(ws, name, "past", window_seconds=3600, features=["a", "b", "c"])
    result = monitor.run(end=end)
    assert result["rows"] == 2000 and result["drifted_features"] == ["c"]
    assert any(r["metric"] == "jensen_shannon" and r["feature"] == "c" and r["drifted"] for r in monitor.results())
    assert [m.name for m in ModelMonitor.list(ws, name)] == ["past"]


def test_the_scheduler_runs_each_window_once(fast_collector):
    service = fast_collector.create_service("sched")
    name = service["name"]
    now = datetime.now(UTC)
    window_end = datetime.fromtimestamp(int(now.timestamp()) // 60 * 60, UTC)
    _post(fast_collector, service, frame(600, seed=31), window_end - timedelta(seconds=150))
    _post(fast_collector, service, frame(600, seed=32, shift_a=2.0), window_end - timedelta(seconds=30))
    ws = Workspace(fast_collector.url, fast_collector.admin_key)
    monitor = ModelMonitor.create(ws, name, "minutely", window_seconds=60)
    deadline = time.monotonic() + 20
    while not monitor.results() and time.monotonic() < deadline:
        time.sleep(0.3)
    results = monitor.results()
    assert results, "the scheduler did not run the monitor"
    assert {r["windowEnd"] for r in results} == {window_end.replace(tzinfo=None).isoformat() + "Z"}
    assert any(r["feature"] == "a" and r["metric"] == "ks" and r["drifted"] for r in results)  # 600 rows: a small window
    runs = {r["runId"] for r in results}
    time.sleep(1.5)
    assert {r["runId"] for r in monitor.results() if r["windowEnd"] == results[0]["windowEnd"]} == runs


def test_prediction_drift_on_model_outputs(fast_collector):
    service = fast_collector.create_service("outputs")
    name = service["name"]
    end = datetime.now(UTC).replace(microsecond=0)
    headers = {"x-instrumentation-key": service["instrumentation_key"]}
    for moment, weights in ((end - timedelta(minutes=90), [1, 1, 1]), (end - timedelta(minutes=10), [1, 1, 8])):
        rows = [{"prediction": label} for label, weight in zip(("setosa", "versicolor", "virginica"), weights, strict=True)
                for _ in range(weight * 100)]
        line = orjson.dumps({"collection": "model_outputs", "time": moment.timestamp(), "data": rows})
        assert httpx.post(f"{fast_collector.url}/api/modeldata", content=line, headers=headers).status_code == 200
    monitor = ModelMonitor.create(Workspace(fast_collector.url, fast_collector.admin_key), name, "outputs",
                                  collection="model_outputs", window_seconds=3600)
    result = monitor.run(end=end)
    assert result["drifted_features"] == ["prediction"]
    metrics = {r["metric"]: r for r in result["results"] if r["feature"] == "prediction"}
    assert {r["signal"] for r in metrics.values()} == {"prediction_drift"}
    assert metrics["linf"]["value"] == pytest.approx(0.8 - 1 / 3) and metrics["linf"]["drifted"]


def test_reference_uploads_have_their_own_limit(fast_collector):
    service = fast_collector.create_service("limit")
    body = b"a\n" + b"1.25\n" * 50_000  # 250 kB, over this collector's 200 kB
    with fast_collector.admin as admin:
        answer = admin.put(f"/api/services/{service['name']}/monitor-references/big?format=csv", content=body)
    assert answer.status_code == 413 and "INSIGHTS_REFERENCE_MAX_BYTES" in answer.text


def test_rows_collected_while_the_collector_is_down_arrive_after(fast_collector, tmp_path):
    """The wrapper keeps collected rows in its spool while the collector is down (scoring goes on),
    and sends them once it is back."""
    collector = fast_collector
    service = collector.create_service("mdc-outage")
    wrapper = Wrapper("echo_score.py", service, tmp_path / "spool")
    wrapper.script = str(Path(__file__).parent / "scripts" / "mdc_score.py")
    wrapper.start()
    ids = [str(uuid.uuid4()) for _ in range(5)]
    iris = [{"sepal_length": 5.1, "sepal_width": 3.5, "petal_length": 1.4, "petal_width": 0.2}]
    try:
        collector.stop()
        for request_id in ids:
            started = time.perf_counter()
            answer = httpx.post(f"{wrapper.url}/score", json={"data": iris}, headers={"x-request-id": request_id})
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
