"""The rollout view, from the API and in a real browser: green, slower and failing one call in five,
is flagged worse than blue with the tests stated."""

import threading
import time
from pathlib import Path

import httpx
import pytest
from endpoint_scripts import SCRIPTS

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@pytest.fixture
def rolled_out(make_endpoint):
    endpoint = make_endpoint("rollout", rate_limit=100_000)
    endpoint.create_deployment("blue", SCRIPTS / "blue_score.py", max_concurrent_requests_per_instance=2)
    endpoint.create_deployment("green", SCRIPTS / "flaky_score.py", max_concurrent_requests_per_instance=2)
    endpoint.update(traffic="blue=60,green=40")
    time.sleep(1.5)  # the host applies a traffic change within a second; until then the default split serves
    key = endpoint.created["primary_key"]

    def client() -> None:
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {key}"}) as http:
            for _ in range(120):
                http.post(endpoint.scoring_uri, json={"data": [1]})

    threads = [threading.Thread(target=client) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    deadline = time.monotonic() + 20
    while True:  # the router's items and the wrappers' exceptions reach the collector apart, within seconds
        answer = endpoint.rollout("PT10M")
        green = next(d for d in answer["deployments"] if d["deployment"] == "green")
        if sum(d["requests"] for d in answer["deployments"]) >= 360 and \
                sum(green["exceptions"].values()) >= green["failures"] > 0:
            return endpoint, answer
        assert time.monotonic() < deadline, answer
        time.sleep(0.5)


def test_rollout_flags_a_slower_more_error_prone_green_as_worse(rolled_out, collector, tmp_path):
    endpoint, answer = rolled_out
    by_name = {d["deployment"]: d for d in answer["deployments"]}
    blue, green = by_name["blue"], by_name["green"]
    assert answer["baseline"] == "blue"
    assert blue["failures"] == 0 and green["failure_rate"] > 0.08
    assert green["failure_rate_ci95"][0] < green["failure_rate"] < green["failure_rate_ci95"][1]
    assert green["p50_ms"] > blue["p50_ms"] + 10
    assert green["exceptions"] == {"ValueError": green["failures"]}
    assert 0.25 < green["traffic_observed"] < 0.55
    verdict = answer["verdicts"][0]
    assert verdict["candidate"] == "green" and verdict["worse_errors"] and verdict["worse_latency"]
    assert "green is WORSE than blue" in answer["verdict"] and "two-proportion z-test" in answer["verdict"]
    _in_chromium(collector, endpoint.name, tmp_path)


def _in_chromium(collector, name: str, tmp_path) -> None:
    from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, free_port, playwright_api, sign_in

    from dashboard.launcher import run_dashboard, stop_dashboard, url, wait_ready

    expect = playwright_api().expect
    port = free_port()
    with open(tmp_path / "dashboard.log", "wb") as log:
        dashboard = run_dashboard(collector.url, port, log_file=log)
        try:
            assert wait_ready(port, dashboard), (tmp_path / "dashboard.log").read_text()
            with chromium() as browser:
                page = browser.new_context(viewport=VIEWPORT).new_page()
                sign_in(page, url(port), collector.admin_key)
                page.get_by_test_id("stSidebarNav").get_by_text("Rollout").click()
                page.get_by_test_id("stSelectbox").first.click()
                page.keyboard.type(name)  # the session's collector may hold more services than the list draws
                page.get_by_role("option", name=name).click()
                expect(page.get_by_text("Verdict: green is WORSE than blue")).to_be_visible(timeout=TIMEOUT_MS)
                expect(page.get_by_text("Mann-Whitney U").first).to_be_visible(timeout=TIMEOUT_MS)
                table = page.get_by_test_id("stTable")
                expect(table.get_by_text("ValueError", exact=False)).to_be_visible(timeout=TIMEOUT_MS)
                expect(table.locator("th", has_text="green")).to_be_visible()
                expect(page.locator(".js-plotly-plot .gtitle", has_text="Requests by deployment")).to_have_count(
                    1, timeout=TIMEOUT_MS)
                page.wait_for_timeout(500)  # let plotly finish drawing before the picture
                ARTIFACTS.mkdir(exist_ok=True)
                page.screenshot(path=str(ARTIFACTS / "dashboard-rollout.png"))
        finally:
            stop_dashboard(dashboard)
