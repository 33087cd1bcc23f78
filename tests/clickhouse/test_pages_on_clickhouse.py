"""The Live metrics, Application map, Rollout, Model monitoring and Alerts pages, unchanged, in
Debian's Chromium on one collector whose store is ClickHouse (the stand-in, tests/clickhouse/chdb_server.py:
no ClickHouse server can run here), the dashboard started as `insights up` starts it.

Each page gets the data its DuckDB test gives it, through the same seeding helpers: `web` calling `api`
and a failing database, sent while the pages are open (tests/live); an online endpoint whose green
deployment fails now and then (tests/endpoints); a monitor over shifted inputs joined to requests
(tests/monitoring); failures, a rule that fires and an availability test (tests/alerts, without
its learned band: see seed_alerts). The assertions are the numbers and charts a user checks on each page.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest
from collector_process import CollectorProcess, exports_under, free_port
from scaleout import FAST_LEASES, START_TIMEOUT_S, store_env
from store_helpers import eventually, migrated_url

TESTS = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(TESTS / folder) for folder in ("dashboard", "live", "endpoints", "monitoring", "alerts")]
from alert_helpers import FAST_ALERTS, ikey_of, request_envelope, send, wait_for  # noqa: E402
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, playwright_api, sign_in  # noqa: E402
from endpoint_scripts import SCRIPTS  # noqa: E402
from test_dashboard_page import _seed as seed_monitor  # noqa: E402
from test_live_pages import Sender  # noqa: E402

from collector.client import OnlineEndpoint, Workspace  # noqa: E402
from collector.store.clickhouse.leases import TTL_ENV  # noqa: E402
from dashboard.launcher import run_dashboard, stop_dashboard, url, wait_ready  # noqa: E402

ARTIFACTS = TESTS.parent / "test-artifacts"
PAGE_MS = 2 * TIMEOUT_MS
"""Each page's queries go through the stand-in, which serves one query at a time, beside the seeds'
traffic (the live sender's every 0.2 s): twice the DuckDB pages' wait."""
expect = playwright_api().expect


SETTLE_S = 240
"""How long the collector may take to fire a rule, learn a band over a week and probe, with the
stand-in serving every query of one process on cores shared with other work."""


def seed_alerts(collector: CollectorProcess) -> str:
    """tests/alerts/test_alerts_dashboard.py's seed without its dynamic rule: three failures among the
    usual traffic, a failures rule that fires and an availability test of /healthz, each waited for
    up to SETTLE_S. The learned band is left out: its week of backfill is ~670 window queries, one at
    a time through the stand-in, which took over 240 s on these shared cores (60 s when they were
    quieter)."""
    service = collector.create_service("alerting")
    name, ikey = service["name"], ikey_of(service)
    send(collector, ikey, [request_envelope(ikey) for _ in range(10)] + [request_envelope(ikey, success=False) for _ in range(3)])
    with collector.admin as api:
        api.post(f"/api/services/{name}/alert-rules", json={
            "name": "failures", "query": "requests | where success == false", "frequency": 1, "window": 600,
            "operator": "GreaterThan", "threshold": 1, "severity": 1})
        api.post(f"/api/services/{name}/availability-tests", json={
            "name": "health", "url": f"{collector.url}/healthz", "frequency": 1, "content_match": "ok"})
        wait_for(lambda: api.get(f"/api/services/{name}/alerts?state=Fired").json(), SETTLE_S, "the rule to fire")
    wait_for(lambda: collector.query("availabilityResults", service=name), SETTLE_S, "a probe run")
    return name


def _rolled_out(collector: CollectorProcess) -> OnlineEndpoint:
    """An endpoint splitting traffic blue=60,green=40 (green slower, failing one call in five), called
    until the rollout view counts green's failures and their exceptions."""
    endpoint = OnlineEndpoint.create(Workspace(collector.url, api_key=collector.admin_key), "chrollout", rate_limit=100_000)
    endpoint.create_deployment("blue", SCRIPTS / "blue_score.py", max_concurrent_requests_per_instance=2)
    endpoint.create_deployment("green", SCRIPTS / "flaky_score.py", max_concurrent_requests_per_instance=2)
    endpoint.update(traffic="blue=60,green=40")
    key = endpoint.get_credentials()["primaryKey"]

    def green_failed() -> bool:
        with httpx.Client(timeout=30, headers={"authorization": f"Bearer {key}"}) as http:
            for _ in range(40):
                http.post(endpoint.scoring_uri, json={"data": [1]})
        green = [d for d in endpoint.rollout("PT1H")["deployments"] if d["deployment"] == "green"]
        return bool(green) and sum(green[0]["exceptions"].values()) >= green[0]["failures"] > 0

    assert eventually(green_failed, timeout=SETTLE_S, interval=0), endpoint.rollout("PT1H")
    return endpoint


@pytest.fixture(scope="module")
def stack(clickhouse_server, tmp_path_factory):
    """One collector on ClickHouse, its services seeded for each page, the dashboard on it and `web`'s
    traffic flowing while the pages are walked."""
    root = tmp_path_factory.mktemp("ch-pages")
    env = {**exports_under(root), **store_env(clickhouse_server, migrated_url(clickhouse_server, "pages")),
           **FAST_LEASES, TTL_ENV: "15", **FAST_ALERTS}
    collector = CollectorProcess(root / "data", env=env).start(timeout=START_TIMEOUT_S)
    log = open(root / "dashboard.log", "wb")
    port = free_port()
    dashboard = run_dashboard(collector.url, port, log_file=log)
    sender, endpoint = None, None
    try:
        monitored: list = []
        seed_monitor(collector, monitored)  # one after the other: side by side they starve the stand-in
        endpoint = _rolled_out(collector)
        alerting = seed_alerts(collector)
        web = collector.create_service("web")
        sender = Sender(collector.url, web["instrumentation_key"])
        sender.thread.start()
        assert wait_ready(port, dashboard), (root / "dashboard.log").read_text()
        yield {"collector": collector, "address": url(port), "web": web["name"], "rollout": endpoint.name,
               "monitored": monitored[0], "alerting": alerting}
    finally:
        if sender is not None:
            sender.stopped.set()
        if endpoint is not None:
            endpoint.delete()
        stop_dashboard(dashboard)
        log.close()
        collector.stop()


@pytest.fixture(scope="module")
def signed_in(stack):
    """One browser page signed in once; each test opens its page from the sidebar."""
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(page, stack["address"], stack["collector"].admin_key)
        yield page


def _page_of(page, service: str, title: str):
    """Page `title` opened from the sidebar, with `service` picked."""
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    expect(page.get_by_test_id("stHeading").filter(has_text=title).first).to_be_visible(timeout=PAGE_MS)
    page.get_by_test_id("stSelectbox").first.click()
    page.keyboard.type(service)
    page.get_by_role("option", name=service).click()
    return page


def _no_error_box(page, where: str) -> None:
    """No exception and no error box (but a verdict, which is a red box when the candidate is worse)."""
    assert page.get_by_test_id("stException").count() == 0, f"{where}: {page.get_by_test_id('stException').first.inner_text()}"
    errors = page.get_by_test_id("stAlertContentError").filter(has_not_text=re.compile(r"^Verdict: "))
    assert errors.count() == 0, f"{where}: {errors.first.inner_text()}"


def _metric(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue")


def _screenshot(page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"clickhouse-{name}.png"))


def _newest_second(page) -> str:
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot'); "
                         "return p && p.data ? String(p.data[0].x[p.data[0].x.length - 1]) : ''; }")


def test_live_metrics_on_clickhouse(stack, signed_in):
    page = _page_of(signed_in, stack["web"], "Live metrics")
    expect(_metric(page, "Requests/s")).not_to_have_text("0", timeout=PAGE_MS)
    expect(page.locator("[data-testid=stPlotlyChart] .js-plotly-plot")).to_have_count(4, timeout=PAGE_MS)
    first = _newest_second(page)
    page.wait_for_function("(first) => { const p = document.querySelector('.js-plotly-plot'); "
                           "return p && String(p.data[0].x[p.data[0].x.length - 1]) !== first; }",
                           arg=first, timeout=PAGE_MS)  # the chart's newest second moved on
    expect(page.get_by_test_id("stDataFrame").last).to_contain_text("500", timeout=PAGE_MS)  # sample failures
    expect(page.get_by_test_id("stDataFrame").first).to_contain_text("web-1")
    expect(_metric(page, "Healthy instances")).to_have_text("2/2", timeout=PAGE_MS)
    _no_error_box(page, "Live metrics")
    _screenshot(page, "live")


def test_application_map_on_clickhouse(stack, signed_in):
    page = _page_of(signed_in, stack["web"], "Application map")
    chart = page.locator("[data-testid=stPlotlyChart] .js-plotly-plot")
    expect(chart).to_have_count(1, timeout=PAGE_MS)
    for label in ("web", "api", "sql | features (database)"):
        expect(chart.locator("text", has_text=label).first).to_be_visible(timeout=PAGE_MS)
    nodes = dict(page.evaluate("() => { const p = document.querySelector('.js-plotly-plot'); const t = p.data[p.data.length - 1];"
                               " return t.customdata.map((c, i) => [c[1], t.marker.color[i]]); }"))
    assert nodes["api"] == "#2e9e44" and nodes["web"] == "#d62728", nodes  # healthy; a quarter failing
    edges = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.annotations.map(a => a.arrowcolor)")
    assert sorted(edges) == ["#2e9e44", "#d62728"]  # web → api healthy, web → the database failing
    _no_error_box(page, "Application map")
    _screenshot(page, "appmap")


def test_rollout_on_clickhouse(stack, signed_in):
    page = _page_of(signed_in, stack["rollout"], "Rollout")
    expect(page.get_by_text("Verdict:").first).to_be_visible(timeout=PAGE_MS)
    table = page.get_by_test_id("stTable")
    expect(table.locator("th", has_text="green")).to_be_visible(timeout=PAGE_MS)
    expect(table.locator("th", has_text="blue")).to_be_visible()
    expect(table.get_by_text("ValueError", exact=False)).to_be_visible()  # green's exceptions, by type
    expect(page.locator(".js-plotly-plot .gtitle", has_text="Requests by deployment")).to_have_count(1, timeout=PAGE_MS)
    expect(page.locator(".js-plotly-plot .legendtext", has_text="green")).to_have_count(1, timeout=PAGE_MS)
    _no_error_box(page, "Rollout")
    _screenshot(page, "rollout")


def test_model_monitoring_on_clickhouse(stack, signed_in):
    page = _page_of(signed_in, stack["monitored"], "Model monitoring")
    expect(_metric(page, "Drifted features")).to_have_text("1 of 4", timeout=PAGE_MS)
    expect(page.locator(".js-plotly-plot .gtitle", has_text="Primary drift metric by window")).to_have_count(1, timeout=PAGE_MS)
    expect(page.locator(".js-plotly-plot .gtitle", has_text="a: reference vs production")).to_have_count(1, timeout=PAGE_MS)
    expect(page.locator(".js-plotly-plot .barlayer .trace")).to_have_count(2)  # reference and production bars
    shown = page.get_by_text(re.compile(r"^\d+ request\(s\) shown"))
    expect(shown).to_be_visible(timeout=PAGE_MS)
    assert int(shown.inner_text().split()[0]) > 0  # the shifted rows' requests, joined on operation_Id
    expect(page.get_by_role("heading", name="Data quality")).to_be_visible()
    _no_error_box(page, "Model monitoring")
    _screenshot(page, "monitoring")


def test_alerts_on_clickhouse(stack, signed_in):
    page = _page_of(signed_in, stack["alerting"], "Alerts")
    expect(_metric(page, "Fired now")).to_have_text("1", timeout=PAGE_MS)
    expect(page.locator(".js-plotly-plot .gtitle", has_text="Fired and resolved")).to_have_count(1, timeout=PAGE_MS)
    expect(page.get_by_test_id("stDataFrame")).to_have_count(3, timeout=PAGE_MS)  # alerts, rules, availability tests
    expect(page.get_by_text("from availabilityResults")).to_be_visible()
    _no_error_box(page, "Alerts")
    _screenshot(page, "alerts")
