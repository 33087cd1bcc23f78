"""Never block, never lose: a collector outage does not slow scoring and loses nothing, a restarted
wrapper sends what its predecessor spooled, and console output (an init() crash included) reaches
`get_logs` and `insights logs`; the enable_app_insights switch reaches a running wrapper."""

import os
import signal
import threading
import time
import uuid

import httpx
import pytest
from collector_process import CollectorProcess, children
from telemetry_rows import wait_for
from typer.testing import CliRunner
from wrapper_process import Wrapper

from collector.client import Webservice, Workspace
from scoring.__main__ import app as scoring_cli
from scoring.supervisor import BACKGROUND_NICE

REQUESTS = 40


class SteadyLoad:
    """`rate` requests a second on one keep-alive connection, from a thread, on a fixed schedule;
    each request's latency is filed under the phase current when it started."""

    def __init__(self, url: str, tag: str, rate: float = 20.0):
        self.url, self.tag, self.period = url, tag, 1 / rate
        self.phase = "before"
        self.latencies: dict[str, list[float]] = {}
        self.errors: list[str] = []
        self.sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> "SteadyLoad":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            tick = time.perf_counter()
            while not self._stop.is_set():
                phase, index = self.phase, self.sent
                started = time.perf_counter()
                try:
                    response = client.post(f"{self.url}/score", json={"n": index}, headers={"x-request-id": f"{self.tag}-{index}"})
                    if response.status_code != 200:
                        self.errors.append(f"{index}: {response.status_code}")
                except httpx.HTTPError as error:
                    self.errors.append(f"{index}: {error!r}")
                self.latencies.setdefault(phase, []).append(time.perf_counter() - started)
                self.sent += 1
                tick += self.period
                self._stop.wait(max(0.0, tick - time.perf_counter()))


def _percentiles(latencies: list[float]) -> tuple[float, float]:
    ordered = sorted(latencies)
    return ordered[len(ordered) // 2] * 1000, ordered[int(len(ordered) * 0.99)] * 1000


def test_collector_down_60s_under_load_slows_nothing_and_loses_nothing(tmp_path):
    """The issue's proof: 20 requests/s throughout, the collector stopped for 60 s in the middle."""
    collector = CollectorProcess(tmp_path / "data").start()
    service = collector.create_service("outage")
    wrapper = Wrapper("echo_score.py", service, tmp_path / "spool").start()
    tag = uuid.uuid4().hex[:8]
    load = SteadyLoad(wrapper.url, tag).start()
    try:
        time.sleep(6)
        collector.stop()
        load.phase = "outage"
        time.sleep(60)
        collector.start()
        load.phase = "after"
        time.sleep(2)
        load.stop()
        telemetry = wrapper.metrics()["telemetry"]
        before, outage = _percentiles(load.latencies["before"]), _percentiles(load.latencies["outage"])
        print(f"\nscoring latency at 20 req/s, collector up: p50 {before[0]:.2f} ms, p99 {before[1]:.2f} ms "
              f"({len(load.latencies['before'])} requests); collector down 60 s: p50 {outage[0]:.2f} ms, "
              f"p99 {outage[1]:.2f} ms ({len(load.latencies['outage'])} requests); {load.sent} sent, "
              f"{len(load.errors)} errors; wrapper telemetry {telemetry}")
        assert load.errors == []
        assert len(load.latencies["outage"]) >= 0.9 * 20 * 60, "the load did not keep its pace during the outage"
        assert outage[0] < 3 * before[0] + 1, "p50 moved while the collector was down"
        assert outage[1] < 10 * max(before[1], 2.5), "p99 moved while the collector was down"
        assert telemetry["dropped_queue_full"] == 0 and telemetry["dropped_spool_full"] == 0

        mine = lambda row: row["customDimensions"].get("Request Id", "").startswith(tag + "-")  # noqa: E731
        requests = wait_for(collector, service, "requests", (mine, load.sent), timeout=60)
        assert sorted(int(r["customDimensions"]["Request Id"].rsplit("-", 1)[1]) for r in requests) == list(range(load.sent))
        prints = wait_for(collector, service, "traces", (lambda r: mine(r) and r["message"] == "STDOUT", load.sent), timeout=30)
        assert len(prints) == load.sent
    finally:
        load.stop()
        wrapper.stop()
        collector.stop()


def test_restarted_wrapper_sends_what_its_predecessor_spooled(tmp_path):
    collector = CollectorProcess(tmp_path / "data").start()
    service = collector.create_service("respool")
    spool = tmp_path / "spool"
    wrapper = Wrapper("echo_score.py", service, spool, env={"INSIGHTS_FLUSH_TIMEOUT_MS": "1000"}).start()
    tag = uuid.uuid4().hex[:8]
    try:
        collector.stop()  # the collector goes away
        for index in range(REQUESTS):
            response = httpx.post(f"{wrapper.url}/score", json={"n": index}, headers={"x-request-id": f"{tag}-{index}"})
            assert response.status_code == 200
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


def test_sigterm_finishes_in_flight_requests_and_sends_their_telemetry(scoring_collector, tmp_path):
    service = scoring_collector.create_service("sigterm")
    spool = tmp_path / "spool"
    wrapper = Wrapper("echo_score.py", service, spool, args=["--max_concurrent_requests", "4"]).start()
    tag = uuid.uuid4().hex[:8]
    answers = {}

    def score(index):
        answers[index] = httpx.post(f"{wrapper.url}/score", json={"sleep": 1.5, "n": index},
                                    headers={"x-request-id": f"{tag}-{index}"}, timeout=30)

    clients = [threading.Thread(target=score, args=(index,)) for index in range(4)]
    for client in clients:
        client.start()
    deadline = time.monotonic() + 10
    while wrapper.metrics()["pending_requests"] < 4 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert wrapper.metrics()["pending_requests"] == 4
    signalled = time.monotonic()
    wrapper.process.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    with pytest.raises(httpx.ConnectError):  # no new requests once the signal arrived...
        httpx.post(f"{wrapper.url}/score", json={"late": True}, timeout=5)
    for client in clients:
        client.join(timeout=30)
    assert [answers[index].status_code for index in range(4)] == [200] * 4  # ...and those in flight finish
    assert wrapper.wait(timeout=30) == 0
    took = time.monotonic() - signalled
    assert took < 1.5 + 5 + 3, f"stopping took {took:.1f} s: the flush is bounded by INSIGHTS_FLUSH_TIMEOUT_MS=5000"
    assert not list(spool.joinpath("telemetry").glob("*.ndjson")), "telemetry left behind although the collector was up"
    mine = lambda row: row["customDimensions"].get("Request Id", "").startswith(tag)  # noqa: E731
    requests = wait_for(scoring_collector, service, "requests", (mine, 4), timeout=2)
    assert sorted(r["resultCode"] for r in requests) == ["200"] * 4
    assert all(r["duration"] >= 1500 for r in requests)
    wait_for(scoring_collector, service, "traces", (lambda r: mine(r) and r["message"] == "STDOUT", 4), timeout=2)


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


def test_sending_yields_the_cpu_to_scoring(echo):
    """Every thread of the supervisor (the senders, the console tee, the heartbeat) runs at a lower
    priority than the worker that scores, those started before it lowered itself included; but the
    main thread, which only watches the workers and starts those a reload or autoscale adds (they
    inherit its priority), keeps the workers' own."""
    supervisor = echo.process.pid
    ((worker, _),) = children(supervisor)
    threads = [int(tid) for tid in os.listdir(f"/proc/{supervisor}/task") if int(tid) != supervisor]
    assert len(threads) >= 3  # two senders, the console tee, ...
    worker_nice = os.getpriority(os.PRIO_PROCESS, worker)
    assert {os.getpriority(os.PRIO_PROCESS, tid) for tid in threads} == {worker_nice + BACKGROUND_NICE}
    assert os.getpriority(os.PRIO_PROCESS, supervisor) == worker_nice

