"""Fixtures for the dashboard tests: services seeded through the real collector's import API, and
AppTest instances of the real app pointed at that collector."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import collector_api

sys.path.insert(0, str(Path(__file__).parent))
from dashboard_seed import APP, seed_service  # noqa: E402


@pytest.fixture(scope="session")
def seeded(collector):
    return seed_service(collector)


@pytest.fixture
def dashboard_env(collector, monkeypatch):
    monkeypatch.setenv("INSIGHTS_URL", collector.url)
    monkeypatch.setenv("INSIGHTS_API_KEY", collector.admin_key)


@pytest.fixture
def app(dashboard_env):
    """Make an AppTest of the whole app with `service` picked in the sidebar, on `page` (a file under views/)."""
    def make(service: str | None, page: str | None = None) -> AppTest:
        collector_api.services.clear()  # the service list is cached for a few seconds; tests create services
        at = AppTest.from_file(APP, default_timeout=30)
        if service:
            at.session_state["service"] = service
        at.run()
        if page:
            at.switch_page(f"views/{page}.py").run()
        assert not at.exception, at.exception
        return at
    return make
