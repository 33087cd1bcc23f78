"""End to end in a real browser: Debian's chromium driven by Playwright (never a browser download),
the dashboard started by `run_dashboard` exactly as `insights up` starts it, against its own
collector process with one seeded service, signed in with the admin key through the form.
Screenshots go to test-artifacts/. The sign-in's own tests (no content without a session, a
service's key, the login link, telemetry shown as text) are in tests/security/test_dashboard.py."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, dashboard_stack, playwright_api, sign_in
from dashboard_seed import SEEDED_REQUESTS, seed_service
from loader import ITEMS_PER_BATCH
from spool_batches import set_aside_two

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
sync_api = playwright_api()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A collector with one seeded service, and the dashboard on it."""
    seeded = []
    with dashboard_stack(tmp_path_factory.mktemp("e2e"), seed=lambda c: seeded.extend(seed_service(c, prefix="e2e"))) as stack:
        service, items = seeded
        yield stack, service, items


@pytest.fixture
def page():
    with chromium() as browser:
        yield browser.new_context(viewport=VIEWPORT).new_page()


def test_overview_in_chromium_then_flip_the_switch(stack, page):
    stack, service, items = stack
    collector = stack.collector
    expect = sync_api.expect
    sign_in(page, stack.address, collector.admin_key)
    requests = page.get_by_test_id("stMetric").filter(has_text="Requests").first.get_by_test_id("stMetricValue")
    expect(requests).to_have_text(f"{SEEDED_REQUESTS:,}", timeout=TIMEOUT_MS)
    failed = sum(r["itemType"] == "request" and not r["success"] for r in items)
    expect(page.get_by_test_id("stMetric").filter(has_text="Failed requests").get_by_test_id("stMetricValue")).to_have_text(f"{failed:,}")
    plots = page.locator("[data-testid=stPlotlyChart] .js-plotly-plot .main-svg")
    expect(plots.first).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.locator("[data-testid=stPlotlyChart] .js-plotly-plot")).to_have_count(7, timeout=TIMEOUT_MS)
    expect(page.locator(".js-plotly-plot .scatterlayer path.js-line").first).to_be_visible()
    expect(page.locator(".js-plotly-plot .barlayer path").first).to_be_visible()
    for title in ("Request rate", "Response time", "Failed requests by result code", "Exceptions by type"):
        expect(page.locator(".js-plotly-plot .gtitle", has_text=title)).to_have_count(1)
    _legends_clear_of_the_toolbar(page)
    page.wait_for_timeout(500)  # let plotly finish drawing every chart before the picture
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-overview.png"))

    page.get_by_test_id("stSidebarNav").get_by_text("Services").click()
    switch = page.get_by_role("switch", name="enable_app_insights")
    expect(switch).to_be_checked(timeout=TIMEOUT_MS)
    page.get_by_test_id("stCheckbox").filter(has_text="enable_app_insights").click()
    expect(page.get_by_text("App Insights is now off")).to_be_visible(timeout=TIMEOUT_MS)
    expect(switch).not_to_be_checked()
    answer = httpx.get(f"{collector.url}/api/services/{service}", headers={"x-api-key": collector.admin_key}).json()
    assert answer["enable_app_insights"] is False
    page.screenshot(path=str(ARTIFACTS / "dashboard-services.png"))
    # Every call the dashboard made carried the key signed in with, and no other.
    assert stack.proxy.hits and {hit.key for hit in stack.proxy.hits} == {collector.admin_key}


def _overlap(a: dict, b: dict) -> bool:
    return a["x"] < b["x"] + b["width"] and b["x"] < a["x"] + a["width"] and \
        a["y"] < b["y"] + b["height"] and b["y"] < a["y"] + a["height"]


def _legends_clear_of_the_toolbar(page) -> None:
    """In every chart with a legend, neither the plot toolbar (shown on hover) nor an x axis label
    covers any part of it."""
    charts = page.locator("[data-testid=stPlotlyChart] .js-plotly-plot")
    checked = 0
    for index in range(charts.count()):
        chart = charts.nth(index)
        legend = chart.locator("g.legend")
        if not legend.count():
            continue
        chart.hover()
        toolbar = chart.locator(".modebar")
        toolbar.wait_for(timeout=TIMEOUT_MS)
        title = chart.locator(".gtitle").text_content()
        box = legend.bounding_box()
        assert not _overlap(box, toolbar.bounding_box()), f"{title}: the toolbar covers the legend"
        for label in chart.locator(".xaxislayer-above text").all():
            shown = label.bounding_box()  # None: not displayed (Plotly hides crowded ticks), so not covered
            assert shown is None or not _overlap(box, shown), f"{title}: the legend covers {label.text_content()!r}"
        checked += 1
    assert checked >= 3  # Response time, Failed requests by result code, Exceptions by type, ...


def test_set_aside_batches_shown_and_replayed_from_the_services_page(tmp_path, page, monkeypatch):
    """A collector that set aside two acknowledged batches (one refused while the hook that refused
    it was on, gone now; one DuckDB refuses for good): the admin sees both on Services, replays, and
    the first goes in while the second stays, with DuckDB's reason."""
    set_aside_two(tmp_path / "data", tmp_path, monkeypatch)

    def bench_service(collector) -> None:
        with collector.admin as client:
            client.post("/api/services", json={"name": "bench"}).raise_for_status()

    with dashboard_stack(tmp_path, seed=bench_service) as stack:
        expect = sync_api.expect
        sign_in(page, stack.address, stack.collector.admin_key)
        page.get_by_test_id("stSidebarNav").get_by_text("Services").click()
        expect(page.get_by_text(f"{ITEMS_PER_BATCH + 1:,} items in 2 batches")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("stDataFrame").first).to_be_visible()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-set-aside.png"))
        page.get_by_role("button", name="Replay set-aside batches").click()
        # (the message is escaped Markdown: a word joiner before each ':')
        expect(page.get_by_text(f"1 batches, {ITEMS_PER_BATCH:,} items. Refused again")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_text("record 4").first).to_be_visible()
        expect(page.get_by_text("1 items in 1 batches")).to_be_visible(timeout=TIMEOUT_MS)
        left = httpx.get(f"{stack.collector.url}/api/store/set-aside", headers={"x-api-key": stack.collector.admin_key}).json()
        assert [batch["record"] for batch in left["batches"]] == [4]
        stats = httpx.get(f"{stack.collector.url}/api/services/bench/stats", headers={"x-api-key": stack.collector.admin_key}).json()
        assert (stats["accepted"], stats["set_aside"]) == (3 * ITEMS_PER_BATCH, 1)
