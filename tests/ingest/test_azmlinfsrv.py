"""An unmodified azmlinfsrv (azureml-inference-server-http) with App Insights pointed at the collector.

azmlinfsrv pins OpenTelemetry 1.33, so it lives in its own venv (.venv-azmlinfsrv, made by .ci/run).
"""

import os
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from collector_process import NO_PHONE_HOME, free_port
from wait import rows_eventually

ROOT = Path(__file__).resolve().parents[2]
AZMLINFSRV = ROOT / ".venv-azmlinfsrv" / "bin" / "azmlinfsrv"

SCORE_PY = '''
import json, time

def init():
    print("init done")

def run(raw_data):
    data = json.loads(raw_data)
    if data.get("fail"):
        raise ValueError("boom from run()")
    if data.get("sleep"):
        time.sleep(data["sleep"])
    print(json.dumps({"input": data, "output": [1, 42]}))
    return [1, 42]
'''


@pytest.fixture
def azmlinfsrv(collector, tmp_path):
    assert AZMLINFSRV.exists(), "azmlinfsrv is missing: run .ci/run, which installs it into .venv-azmlinfsrv"
    service = collector.create_service("azml")
    (tmp_path / "score.py").write_text(SCORE_PY)
    port = free_port()
    env = {
        **os.environ, **NO_PHONE_HOME,
        "APPLICATIONINSIGHTS_CONNECTION_STRING": service["connection_string"],
        "AML_APP_INSIGHTS_ENABLED": "true",
        "AML_APP_INSIGHTS_KEY": service["instrumentation_key"],
        "SERVICE_NAME": service["name"], "WORKSPACE_NAME": "ws-test", "HOSTNAME": "container-1",
        "SCORING_TIMEOUT_MS": "1000",
        "TMPDIR": str(tmp_path),
    }
    process = subprocess.Popen([str(AZMLINFSRV), "--entry_script", "score.py", "--port", str(port)],
                               cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(url + "/", timeout=1).status_code == 200:
                break
        except httpx.TransportError:
            time.sleep(0.2)
    else:
        process.kill()
        pytest.fail("azmlinfsrv did not start")
    yield service, url
    process.terminate()
    process.wait(timeout=30)


def test_requests_traces_and_exceptions_land_with_true_columns(collector, azmlinfsrv):
    service, url = azmlinfsrv
    ok = httpx.post(url + "/score", json={"data": [1, 2, 3]}, headers={"x-ms-client-request-id": "client-abc"})
    assert ok.status_code == 200
    assert httpx.post(url + "/score", json={"fail": True}).status_code == 500
    assert httpx.post(url + "/score", json={"sleep": 2}, timeout=10).status_code == 500  # scoring timeout

    requests = rows_eventually(collector, "requests", service, count=3, timeout=40)
    by_code = sorted((r["resultCode"], r["success"]) for r in requests)
    assert by_code == [("200", True), ("500", False), ("500", False)]  # azmlinfsrv itself says "0"/true
    good = next(r for r in requests if r["resultCode"] == "200")
    assert good["name"] == "POST /score"
    assert good["url"].endswith("/score")
    assert good["duration"] > 0  # azmlinfsrv sends 0.00:00:00.000
    assert good["customDimensions"]["Client Request Id"] == "client-abc"
    slow = max(requests, key=lambda r: r["duration"])
    assert slow["duration"] >= 1000

    traces = rows_eventually(collector, "traces", service, count=2, timeout=40, where='| where message has "input" or message == "init done"')
    assert any('"output": [1, 42]' in t["message"] for t in traces)
    assert all(t["severityLevel"] == 1 for t in traces)  # sent as the string "1"

    exceptions = rows_eventually(collector, "exceptions", service, count=2, timeout=40)
    raised = next(e for e in exceptions if e["innermostType"] == "ValueError")
    assert raised["innermostMessage"] == "boom from run()"
    assert raised["type"] == "UserScriptException"
    assert not raised["message"].startswith("(<class")  # the repr of exc_info is replaced
    assert raised["customDimensions"]["Container Id"] == "container-1"  # unpacked from a stringified dict
