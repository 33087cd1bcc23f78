"""The Model monitoring page with a service's own key (Streamlit's AppTest, the real collector):
it reads that service's monitors, and says how to create one when there are none."""

from __future__ import annotations

import sys
from pathlib import Path

from streamlit.testing.v1 import AppTest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dashboard"))
from dashboard_harness import signed_in  # noqa: E402
from dashboard_seed import APP  # noqa: E402

from dashboard import collector_api  # noqa: E402


def _page(collector, service: dict, monkeypatch) -> AppTest:
    monkeypatch.setenv("INSIGHTS_URL", collector.url)
    collector_api.services.clear()
    at = signed_in(AppTest.from_file(APP, default_timeout=30), collector.url, service["api_key"], service["name"])
    at.session_state["service"] = service["name"]
    at.run()
    at.switch_page("views/monitoring.py").run()
    assert not at.exception, at.exception
    return at


def test_a_service_key_reads_its_monitors(collector, monkeypatch):
    service = collector.create_service("page-key")
    at = _page(collector, service, monkeypatch)
    assert "insights monitor create" in at.info[0].value
    with collector.admin as admin:
        assert admin.put(f"/api/services/{service['name']}/monitors/m", json={"window_seconds": 3600}).status_code == 200
    at = _page(collector, service, monkeypatch)
    assert at.selectbox(key="monitor").value == "m"
    assert "no results yet" in at.info[0].value
