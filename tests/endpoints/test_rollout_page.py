"""The Rollout page on a service that is no online endpoint: it says so and how to make one
(Streamlit's AppTest; the page with data is tested in Chromium, test_rollout.py)."""

from dashboard_harness import signed_in
from dashboard_seed import APP
from streamlit.testing.v1 import AppTest

from dashboard import collector_api


def test_a_plain_service_is_told_how_to_make_an_endpoint(collector, monkeypatch):
    monkeypatch.setenv("INSIGHTS_URL", collector.url)
    service = collector.create_service("plain")["name"]
    collector_api.services.clear()
    at = signed_in(AppTest.from_file(APP, default_timeout=30), collector.url, collector.admin_key)
    at.session_state["service"] = service
    at.run().switch_page("views/rollout.py").run()
    assert not at.exception, at.exception
    assert "is not an online endpoint" in at.info[0].value
    assert "insights endpoint create" in "\n".join(m.value for m in at.markdown)
