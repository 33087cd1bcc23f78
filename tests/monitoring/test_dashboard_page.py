"""The Model monitoring page in a real Chromium (Debian's, driven by Playwright), the dashboard
started as `insights up` starts it, against its own collector: a monitor over shifted collected
inputs whose rows carry the operation_Ids of seeded requests; the page shows the drift over time
with its threshold, the histograms, data quality, and the requests whose inputs fell in the bins
that grew."""

from __future__ import annotations

import re
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import pytest
from drift_data import frame

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, dashboard_stack, playwright_api, sign_in  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
sync_api = playwright_api()


def _seed(collector, names: list) -> None:
    service = collector.create_service("monpage")
    names.append(service["name"])
    now = datetime.now(UTC)
    shifted = frame(400, seed=41, shift_a=3.0)
    operations = [uuid.uuid4().hex for _ in range(len(shifted))]
    items = [orjson.dumps({"collection": "model_inputs", "time": now.timestamp() - 60, "operationId": op,
                           "data": [row]}) for op, row in zip(operations, shifted.to_dict(orient="records"), strict=True)]
    answer = httpx.post(f"{collector.url}/api/modeldata", content=b"\n".join(items),
                        headers={"x-instrumentation-key": service["instrumentation_key"]}, timeout=60)
    assert answer.status_code == 200, answer.text
    stamp = (now - timedelta(seconds=60)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    collector.import_rows(service["name"], [orjson.dumps(
        {"itemType": "request", "timestamp": stamp, "id": op[:16], "name": "POST /score", "success": True,
         "resultCode": "200", "duration": 12.5, "operation_Id": op}) for op in operations])
    with collector.admin as admin:
        reference = frame(3000, seed=40).to_csv(index=False).encode()
        assert admin.put(f"/api/services/{service['name']}/monitor-references/train?format=csv", content=reference).status_code == 200
        assert admin.put(f"/api/services/{service['name']}/monitors/inputs",
                         json={"reference": "train", "window_seconds": 3600}).status_code == 200
        assert admin.post(f"/api/services/{service['name']}/monitors/inputs/run").json()["drifted_features"] == ["a"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    names: list = []
    with dashboard_stack(tmp_path_factory.mktemp("monitoring-page"), seed=lambda c: _seed(c, names)) as running:
        yield running, names[0]


def test_model_monitoring_page_in_chromium(stack):
    running, service = stack
    expect = sync_api.expect
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(page, running.address, running.collector.admin_key)
        page.get_by_test_id("stSidebarNav").get_by_text("Model monitoring").click()
        expect(page.get_by_role("heading", name="Model monitoring")).to_be_visible(timeout=TIMEOUT_MS)
        drifted = page.get_by_test_id("stMetric").filter(has_text="Drifted features").get_by_test_id("stMetricValue")
        expect(drifted).to_have_text("1 of 4", timeout=TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Primary drift metric by window")).to_have_count(1, timeout=TIMEOUT_MS)
        expect(page.get_by_text("threshold 0.05").first).to_be_visible()  # 400 rows: a small window, KS p-value
        expect(page.locator(".js-plotly-plot .gtitle", has_text="a: reference vs production")).to_have_count(1)
        expect(page.locator(".js-plotly-plot .barlayer .trace")).to_have_count(2)  # reference and production bars
        expect(page.get_by_text("fell in the bins that grew")).to_be_visible(timeout=TIMEOUT_MS)
        shown = page.get_by_text(re.compile(r"^\d+ request\(s\) shown"))
        expect(shown).to_be_visible(timeout=TIMEOUT_MS)
        assert int(shown.inner_text().split()[0]) > 0  # the shifted rows' requests, joined on operation_Id
        expect(page.get_by_role("heading", name="Data quality")).to_be_visible()
        grid = page.get_by_test_id("stDataFrame").first
        expect(grid).to_be_visible()
        expect(page.get_by_text("join kind=inner").first).to_be_visible()
        page.wait_for_timeout(500)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-model-monitoring.png"), full_page=True)
