"""Fixtures for the dashboard tests: services seeded through the real collector's import API, and
AppTest instances of the real app pointed at that collector, in a signed-in session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import collector_api

sys.path.insert(0, str(Path(__file__).parent))
from dashboard_harness import signed_in  # noqa: E402
from dashboard_seed import APP, seed_service  # noqa: E402


@pytest.fixture(scope="session")
def seeded(collector):
    return seed_service(collector)


@pytest.fixture
def dashboard_env(collector, monkeypatch):
    """The collector's URL, as the launcher hands it over; never a key."""
    monkeypatch.setenv("INSIGHTS_URL", collector.url)
    monkeypatch.delenv("INSIGHTS_API_KEY", raising=False)


@pytest.fixture
def app(dashboard_env, collector):
    """Make an AppTest of the whole app, signed in with the admin key (or `key`, the API key of
    `service`), with `service` picked in the sidebar, on `page` (a file under views/)."""
    def make(service: str | None, page: str | None = None, key: str | None = None) -> AppTest:
        collector_api.services.clear()  # the service list is cached for a few seconds; tests create services
        at = signed_in(AppTest.from_file(APP, default_timeout=30), collector.url, key or collector.admin_key,
                       service if key else None)
        if service:
            at.session_state["service"] = service
        at.run()
        if page:
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, at.exception
        return at
    return make
