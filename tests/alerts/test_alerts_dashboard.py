"""The Alerts page and the Overview's availability chart in a real browser (Debian's chromium via
Playwright), the dashboard started as `insights up` starts it, on a collector where a rule fired,
a dynamic rule learned its band and an availability test probes the collector's own /healthz."""

from __future__ import annotations

import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from alert_helpers import fast_collector, ikey_of, request_envelope, send, wait_for

sys.path.insert(0, str(Path(__file__).parent.parent / "dashboard"))
from collector_process import free_port  # noqa: E402
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, playwright_api, sign_in  # noqa: E402
from test_dynamic_rule import _usual_count, _week_of_requests  # noqa: E402

from dashboard.launcher import run_dashboard, stop_dashboard, url, wait_ready  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
sync_api = playwright_api()


@pytest.fixture(scope="module")
def alerting_stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("alerts-e2e")
    collector = fast_collector(root / "data").start()
    log = open(root / "dashboard.log", "wb")
    port = free_port()
    dashboard = run_dashboard(collector.url, port, log_file=log)
    try:
        service = _seed(collector)
        assert wait_ready(port, dashboard)
        yield collector, service, url(port)
    finally:
        stop_dashboard(dashboard)
        log.close()
        collector.stop()


def _seed(collector) -> str:
    service = collector.create_service("e2e")
    name, ikey = service["name"], ikey_of(service)
    now = datetime.now(UTC).replace(tzinfo=None)
    collector.import_rows(name, _week_of_requests(now))
    # The last 15 minutes hold the usual count for this time of day, so that the learned band (narrow:
    # the history has no noise) holds it and only the failures rule fires, whatever the hour.
    send(collector, ikey, [request_envelope(ikey, at=now - timedelta(minutes=1)) for _ in range(_usual_count(now) - 3)]
         + [request_envelope(ikey, success=False) for _ in range(3)])
    with collector.admin as api:
        api.post(f"/api/services/{name}/alert-rules", json={
            "name": "failures", "query": "requests | where success == false", "frequency": 1, "window": 600,
            "operator": "GreaterThan", "threshold": 1, "severity": 1})
        api.post(f"/api/services/{name}/alert-rules", json={
            "name": "traffic", "query": "requests", "frequency": 1, "window": 900, "operator": "GreaterOrLessThan",
            "dynamic": "low"})
        api.post(f"/api/services/{name}/availability-tests", json={
            "name": "health", "url": f"{collector.url}/healthz", "frequency": 1, "content_match": "ok"})
        wait_for(lambda: api.get(f"/api/services/{name}/alerts?state=Fired").json(), 30, "the rule to fire")
        wait_for(lambda: any(v["upper"] for v in api.get(f"/api/services/{name}/alert-rules/traffic/values?hours=1").json()),
                 60, "the learned band")
    wait_for(lambda: collector.query("availabilityResults", service=name), 20, "a probe run")
    return name


def test_the_alerts_page_and_the_overview_availability_chart_in_chromium(alerting_stack):
    collector, service, address = alerting_stack
    expect = sync_api.expect
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(page, address, collector.admin_key)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Availability tests")).to_have_count(1, timeout=TIMEOUT_MS)
        page.get_by_test_id("stSidebarNav").get_by_text("Alerts").click()
        fired = page.get_by_test_id("stMetric").filter(has_text="Fired now").get_by_test_id("stMetricValue")
        expect(fired).to_have_text("1", timeout=TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Fired and resolved")).to_have_count(1, timeout=TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="traffic: value and learned band")).to_have_count(
            1, timeout=TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot .legendtext", has_text="learned band")).to_have_count(1)
        tables = page.get_by_test_id("stDataFrame")
        expect(tables).to_have_count(3, timeout=TIMEOUT_MS)  # alerts, rules, availability tests
        expect(page.get_by_text("No notifications yet.")).to_be_visible()  # no action group: no deliveries
        expect(page.get_by_text("from availabilityResults")).to_be_visible()
        page.wait_for_timeout(500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-alerts.png"))
