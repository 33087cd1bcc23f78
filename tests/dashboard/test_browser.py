"""End to end in a real browser: Debian's chromium driven by Playwright (never a browser download),
the dashboard started by `run_dashboard` exactly as `insights up` starts it, against its own
collector process with one seeded service. Screenshots go to test-artifacts/."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import httpx
import pytest
from collector_process import CollectorProcess, free_port
from dashboard_seed import SEEDED_REQUESTS, seed_service

from dashboard.launcher import run_dashboard, stop_dashboard, url, wait_ready

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_BIN") or shutil.which("chromium")
# Offline: no Google services, no DNS for anything but 127.0.0.1.
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
TIMEOUT_MS = 30_000

if not CHROMIUM:
    if os.environ.get("CI"):
        raise RuntimeError("chromium is missing: .ci/run must `apt-get install -y chromium`")
    pytest.skip("chromium is not installed (apt-get install -y chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """A collector with one seeded service, and the dashboard on it."""
    collector = CollectorProcess(tmp_path_factory.mktemp("e2e") / "data").start()
    port = free_port()
    log = open(collector.data_dir.parent / "dashboard.log", "wb")
    dashboard = run_dashboard(collector.url, port, collector.admin_key, log_file=log)
    try:
        service, items = seed_service(collector, prefix="e2e")
        assert wait_ready(port, dashboard), (collector.data_dir.parent / "dashboard.log").read_text()
        yield collector, service, items, url(port)
    finally:
        stop_dashboard(dashboard)
        log.close()
        collector.stop()


@pytest.fixture
def page(tmp_path):
    with sync_api.sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path / "profile"), executable_path=CHROMIUM, args=FLAGS, viewport={"width": 1400, "height": 1900})
        try:
            yield context.new_page()
        finally:
            context.close()


def test_overview_in_chromium_then_flip_the_switch(stack, page):
    collector, service, items, address = stack
    expect = sync_api.expect
    page.goto(address)
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
