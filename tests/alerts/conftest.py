import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from alert_helpers import Receiver, fast_collector  # noqa: E402


@pytest.fixture(scope="session")
def alerting(tmp_path_factory):
    """A collector process whose rules may run every second, for the session; each test makes its own service."""
    process = fast_collector(tmp_path_factory.mktemp("alerts") / "data").start()
    yield process
    process.stop()


@pytest.fixture
def receiver(tmp_path):
    process = Receiver(tmp_path / "receiver")
    yield process
    process.stop()
