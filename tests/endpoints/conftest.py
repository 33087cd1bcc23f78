import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent / "dashboard"))  # dashboard_harness, for the rollout page


@pytest.fixture
def workspace(collector):
    from collector.client import Workspace

    return Workspace(collector.url, api_key=collector.admin_key)


@pytest.fixture
def make_endpoint(workspace):
    """Create endpoints with unique names; each is deleted (its processes stopped) after the test."""
    from collector.client import OnlineEndpoint

    made = []

    def make(prefix: str = "ep", **options) -> OnlineEndpoint:
        endpoint = OnlineEndpoint.create(workspace, f"{prefix}-{uuid.uuid4().hex[:8]}", **options)
        made.append(endpoint)
        return endpoint

    yield make
    for endpoint in made:
        endpoint.delete()
