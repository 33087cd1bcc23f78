"""Never block, never lose: a collector outage does not slow scoring and loses nothing, a restarted
wrapper sends what its predecessor spooled, and console output (an init() crash included) reaches
`get_logs` and `insights logs`; the enable_app_insights switch reaches a running wrapper."""

import time
import uuid

import httpx
from typer.testing import CliRunner

from collector.client import Webservice, Workspace
from scoring.__main__ import app as scoring_cli
from telemetry_rows import wait_for
from collector_process import CollectorProcess
from wrapper_process import Wrapper

REQUESTS = 40


def test_outage_and_wrapper_restart_lose_nothing(tmp_path):
    collector = CollectorProcess(tmp_path / "data").start()
    service = collector.create_service("outage")
    spool = tmp_path / "spool"
    wrapper = Wrapper("echo_score.py", service, spool, env={"INSIGHTS_FLUSH_TIMEOUT_MS": "1000"}).start()
    tag = uuid.uuid4().hex[:8]
    try:
        collector.stop()  # the collector goes away
        latencies = []
        for index in range(REQUESTS):
            started = time.perf_counter()
            response = httpx.post(f"{wrapper.url}/score", json={"n": index}, headers={"x-request-id": f"{tag}-{index}"})
            latencies.append(time.perf_counter() - started)
            assert response.status_code == 200
        assert sorted(latencies)[len(latencies) // 2] < 0.05, "scoring slowed down while the collector was away"
        time.sleep(0.5)
        telemetry = wrapper.metrics()["telemetry"]
        assert telemetry["spooled"] >= 2 * REQUESTS and telemetry["dropped_queue_full"] == 0
        assert wrapper.stop() == 0  # SIGTERM with a full spool: what it holds stays on disk
        assert any(spool.joinpath("telemetry").iterdir())

        collector.start()  # the collector comes back, and so does a new wrapper on the same spool
        wrapper = Wrapper("echo_score.py", service, spool).start()
        mine = lambda row: row["customDimensions"].get("Request Id", "").startswith(tag)  # noqa: E731
        requests = wait_for(collector, service, "requests", (mine, REQUESTS), timeout=30)
        assert len(requests) == REQUESTS
        prints = wait_for(collector, service, "traces", (lambda r: mine(r) and r["message"] == "STDOUT", REQUESTS))
        assert len(prints) == REQUESTS
    finally:
        wrapper.stop()
        collector.stop()


def test_init_crash_is_in_the_console_logs(scoring_collector, tmp_path):
    service = scoring_collector.create_service("crash")
    wrapper = Wrapper("crash_score.py", service, tmp_path / "spool").start(wait_ready=False)
    assert wrapper.wait(timeout=30) == 3
    workspace = Workspace(scoring_collector.url, api_key=scoring_collector.admin_key)
    logs = Webservice(workspace, service["name"]).get_logs(lines=100)
    assert "loading model from /nowhere/model.pkl" in logs
    assert "FileNotFoundError: model file /nowhere/model.pkl is missing" in logs
    assert "exited with code 3" in logs
    exception = wait_for(scoring_collector, service, "exceptions", lambda r: r["type"] == "FileNotFoundError")[0]
    assert exception["customDimensions"]["phase"] == "init"

    own_key = Workspace(scoring_collector.url, api_key=service["api_key"])
    assert Webservice(own_key, service["name"]).get_logs(lines=2).count("\n") == 1
    result = CliRunner().invoke(scoring_cli, ["logs", service["name"], "--lines", "5"],
                                env={"INSIGHTS_URL": scoring_collector.url, "INSIGHTS_API_KEY": scoring_collector.admin_key})
    assert result.exit_code == 0, result.output
    assert "exited with code 3" in result.output


def test_console_logs_route_refuses_bad_input(scoring_collector):
    service = scoring_collector.create_service("logs-api")
    url = f"{scoring_collector.url}/api/logs"
    assert httpx.post(url, content=b'{"line": "x"}').status_code == 401
    assert httpx.post(url, content=b'{"line": "x"}', headers={"x-instrumentation-key": "nope"}).status_code == 401
    bad = httpx.post(url, content=b"not json\n", headers={"x-instrumentation-key": service["instrumentation_key"]})
    assert bad.status_code == 400 and bad.json()["errors"][0]["line"] == 1
    with httpx.Client(base_url=scoring_collector.url) as client:
        other = scoring_collector.create_service("logs-other")
        denied = client.get(f"/api/services/{service['name']}/logs", headers={"x-api-key": other["api_key"]})
        assert denied.status_code == 404
        too_many = client.get(f"/api/services/{service['name']}/logs", params={"lines": 0},
                              headers={"x-api-key": scoring_collector.admin_key})
        assert too_many.status_code == 422


def test_enable_app_insights_switches_a_running_wrapper(scoring_collector, tmp_path):
    service = scoring_collector.create_service("toggle")
    wrapper = Wrapper("echo_score.py", service, tmp_path / "spool").start()
    workspace = Workspace(scoring_collector.url, api_key=scoring_collector.admin_key)
    try:
        Webservice(workspace, service["name"]).update(enable_app_insights=False)
        assert _captured_stops_growing(wrapper), "telemetry still captured 5 s after --disable-app-insights"
        Webservice(workspace, service["name"]).update(enable_app_insights=True)
        deadline = time.monotonic() + 5
        before = wrapper.metrics()["telemetry"]["captured"]
        while wrapper.metrics()["telemetry"]["captured"] == before and time.monotonic() < deadline:
            httpx.post(f"{wrapper.url}/score", json={"a": 1})
            time.sleep(0.2)
        assert wrapper.metrics()["telemetry"]["captured"] > before, "telemetry not back 5 s after --enable-app-insights"
    finally:
        wrapper.stop()


def _captured_stops_growing(wrapper) -> bool:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        before = wrapper.metrics()["telemetry"]["captured"]
        httpx.post(f"{wrapper.url}/score", json={"a": 1})
        if wrapper.metrics()["telemetry"]["captured"] == before:
            return True
        time.sleep(0.2)
    return False
