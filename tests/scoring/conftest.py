import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from wrapper_process import Wrapper  # noqa: E402


@pytest.fixture(scope="session")
def scoring_collector(collector):
    """The session's collector; each scoring test makes its own services."""
    return collector


@pytest.fixture(scope="module")
def echo(scoring_collector, tmp_path_factory):
    """One wrapper hosting scripts/echo_score.py: 1 s scoring timeout, 200 kB body limit."""
    service = scoring_collector.create_service("echo")
    wrapper = Wrapper("echo_score.py", service, tmp_path_factory.mktemp("echo") / "spool",
                      env={"SCORING_TIMEOUT_MS": "1000", "MAX_REQUEST_BODY_BYTES": "200000",
                           "AML_CORS_ORIGINS": "http://allowed.example"}).start()
    yield wrapper
    wrapper.stop()
