"""The Live metrics and Application map pages in a real browser (Debian's chromium via Playwright),
the dashboard started as `insights up` starts it, against its own collector process. Traffic is
posted to the collector's track endpoint as an SDK would, from a thread, while the page is open:
`web` answers requests and calls `api` (a role of its own, linked through operation_ParentId as
App Insights links them) and a SQL database that fails."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, dashboard_stack, playwright_api, sign_in

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
sync_api = playwright_api()


def _envelope(ikey: str, kind: str, role: str, *, ok: bool = True, ms: int = 120, item_id: str | None = None,
              parent: str | None = None, target: str = "", dependency_type: str = "HTTP") -> dict:
    base_type = "RequestData" if kind == "request" else "RemoteDependencyData"
    data = {"ver": 2, "id": item_id or uuid.uuid4().hex[:16], "name": "POST /score" if kind == "request" else "call",
            "duration": f"0.00:00:00.{ms:03d}", "success": ok, "responseCode": "200" if ok else "500",
            "resultCode": "200" if ok else "500", "target": target, "type": dependency_type}
    tags = {"ai.cloud.role": role, "ai.cloud.roleInstance": f"{role}-1", "ai.operation.id": uuid.uuid4().hex}
    if parent:
        tags["ai.operation.parentId"] = parent
    return {"iKey": ikey, "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            "name": f"Microsoft.ApplicationInsights.{base_type}", "tags": tags,
            "data": {"baseType": base_type, "baseData": data}}


def _one_call(ikey: str, failing: bool) -> list[dict]:
    """A `web` request calling `api` (which answers) and the database."""
    call = uuid.uuid4().hex[:16]
    return [_envelope(ikey, "request", "web", ok=not failing, ms=300 if failing else 80),
            _envelope(ikey, "dependency", "web", item_id=call, target="api:80", ms=40),
            _envelope(ikey, "request", "api", parent=call, ms=35),
            _envelope(ikey, "dependency", "web", ok=False, target="sql | features", dependency_type="SQL", ms=20)]


class Sender:
    """Posts a few calls (one failing) every 0.2 s until stopped."""

    def __init__(self, url: str, ikey: str):
        self.url, self.ikey = url, ikey
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as client:
            while not self.stopped.wait(0.2):
                body = [item for index in range(4) for item in _one_call(self.ikey, failing=index == 0)]
                client.post(f"{self.url}/v2.1/track", json=body)


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    services = []
    with dashboard_stack(tmp_path_factory.mktemp("live-pages"),
                         seed=lambda c: services.append(c.create_service("web"))) as stack:
        sender = Sender(stack.collector.url, services[0]["instrumentation_key"])
        sender.thread.start()
        yield stack, services[0]
        sender.stopped.set()


@pytest.fixture
def page():
    with chromium() as browser:
        yield browser.new_context(viewport=VIEWPORT).new_page()


def _last_x(page) -> str:
    return page.evaluate("() => { const p = document.querySelector('.js-plotly-plot'); "
                         "return p && p.data ? String(p.data[0].x[p.data[0].x.length - 1]) : ''; }")


def test_live_page_moves_each_second_with_failures_and_instances(stack, page):
    stack, service = stack
    expect = sync_api.expect
    sign_in(page, stack.address, stack.collector.admin_key)
    page.get_by_test_id("stSidebarNav").get_by_text("Live metrics").click()
    rate = page.get_by_test_id("stMetric").filter(has_text="Requests/s").get_by_test_id("stMetricValue")
    expect(rate).not_to_have_text("0", timeout=TIMEOUT_MS)
    expect(page.locator("[data-testid=stPlotlyChart] .js-plotly-plot")).to_have_count(4, timeout=TIMEOUT_MS)
    first = _last_x(page)
    page.wait_for_function(f"() => {{ const p = document.querySelector('.js-plotly-plot'); "
                           f"return p && String(p.data[0].x[p.data[0].x.length - 1]) !== {first!r}; }}",
                           timeout=5_000)  # the chart's newest second moved on
    expect(page.get_by_text("Sample failures")).to_be_visible()
    samples = page.get_by_test_id("stDataFrame").last
    expect(samples).to_contain_text("500", timeout=TIMEOUT_MS)
    expect(page.get_by_test_id("stDataFrame").first).to_contain_text("web-1")
    healthy = page.get_by_test_id("stMetric").filter(has_text="Healthy instances").get_by_test_id("stMetricValue")
    expect(healthy).to_have_text("2/2")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"))


def test_map_page_draws_the_graph_and_a_click_opens_failures(stack, page):
    stack, service = stack
    expect = sync_api.expect
    sign_in(page, stack.address, stack.collector.admin_key)
    page.get_by_test_id("stSidebarNav").get_by_text("Application map").click()
    chart = page.locator("[data-testid=stPlotlyChart] .js-plotly-plot")
    expect(chart).to_have_count(1, timeout=TIMEOUT_MS)
    for label in ("web", "api", "sql | features (database)"):
        expect(chart.locator("text", has_text=label).first).to_be_visible(timeout=TIMEOUT_MS)
    nodes = page.evaluate("() => { const p = document.querySelector('.js-plotly-plot'); const t = p.data[p.data.length - 1];"
                          " return t.customdata.map((c, i) => [c[1], t.marker.color[i]]); }")
    colours = dict(nodes)
    assert colours["api"] == "#2e9e44" and colours["web"] == "#d62728", colours  # healthy; a quarter failing
    edges = page.evaluate("() => document.querySelector('.js-plotly-plot').layout.annotations.map(a => a.arrowcolor)")
    assert sorted(edges) == ["#2e9e44", "#d62728"]  # web → api healthy, web → the database failing
    index = [name for name, _ in nodes].index("web")
    opened = page.get_by_text("Failures of web")
    for _ in range(3):  # a click while the page still settles (a loaded machine) can land before plotly listens
        point = chart.locator(".scatterlayer .trace").last.locator(".points path").nth(index).bounding_box()
        page.mouse.click(point["x"] + point["width"] / 2, point["y"] + point["height"] / 2)  # plotly's own layer
        try:
            opened.wait_for(timeout=10_000)
            break
        except sync_api.TimeoutError:
            continue
    expect(opened).to_be_visible(timeout=TIMEOUT_MS)
    expect(page.get_by_text("Slowest calls of web")).to_be_visible()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-appmap.png"))
