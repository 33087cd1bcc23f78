"""The Services page's "Scale events" section in a real browser (Debian's chromium through
Playwright, as tests/dashboard does): autoscale customEvents of the selected service, as a wrapper's
supervisor sends them, shown with the latest change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, dashboard_stack, playwright_api, sign_in

from dashboard.scale_events import events_table

sync_api = playwright_api()


def _event(minutes_ago: int, before: int, after: int, utilization: float) -> bytes:
    moment = datetime.now(UTC) - timedelta(minutes=minutes_ago)
    return orjson.dumps({
        "itemType": "customEvent", "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "name": "Autoscale",
        "customDimensions": {"from": str(before), "to": str(after), "utilization": f"{utilization}%", "target": "70%"},
        "customMeasurements": {"instances": after, "previous_instances": before, "utilization_percent": utilization}})


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    seeded = []

    def seed(collector):
        service = collector.create_service("scaled")
        collector.import_rows(service["name"], [_event(9, 1, 2, 95.5), _event(5, 2, 4, 150.0)])
        seeded.append(service["name"])

    with dashboard_stack(tmp_path_factory.mktemp("scale-events"), seed=seed) as stack:
        yield stack, seeded[0]


def test_scale_events_show_on_the_services_page(stack):
    stack, service = stack
    expect = sync_api.expect
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(page, stack.address, stack.collector.admin_key)
        page.get_by_test_id("stSidebarNav").get_by_text("Services").click()
        expect(page.get_by_text("Scale events")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_text("2 event(s); now 4 worker(s) after a change from 2 at 150.0% utilization "
                                "(target 70%).")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.get_by_test_id("stDataFrame").filter(has=page.locator("canvas")).first).to_be_visible()


def test_events_table_reads_dimensions_given_as_text_or_objects():
    import pandas as pd

    frame = pd.DataFrame([{"timestamp": 1, "customDimensions": '{"from": "1", "to": "3", "utilization": "99%", '
                                                               '"target": "70%"}', "customMeasurements": {"instances": 3}},
                          {"timestamp": 0, "customDimensions": None, "customMeasurements": "not json"}])
    table = events_table(frame)
    assert table.iloc[0].to_dict() == {"time": 1, "from": "1", "to": "3", "instances": 3, "utilization": "99%",
                                       "target": "70%"}
    assert table.iloc[1]["from"] == "" and pd.isna(table.iloc[1]["instances"])
