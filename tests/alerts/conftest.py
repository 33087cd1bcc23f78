import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from alert_helpers import Receiver, fast_collector  # noqa: E402
from backfill_history import history  # noqa: E402

from collector.store.database import Store  # noqa: E402


@pytest.fixture(scope="session")
def alerting(tmp_path_factory):
    """A collector process whose rules may run every second, for the session; each test makes its own service."""
    process = fast_collector(tmp_path_factory.mktemp("alerts") / "data").start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """A DuckDB store holding backfill_history's seeded week, for the backfill tests of one module."""
    seeded = Store(tmp_path_factory.mktemp("backfill") / "data")
    seeded.writer.write(history()).result()
    yield seeded
    seeded.close()


@pytest.fixture
def receiver(tmp_path):
    process = Receiver(tmp_path / "receiver")
    yield process
    process.stop()


@pytest.fixture(autouse=True)
def _services_go_with_their_test(request):
    """The session's collector would run every test's 1-second rules and probes until the session
    ends, and later tests would queue behind them: the services a test made (with their rules and
    tests, which the scheduler skips once the service is gone) are deleted when it ends."""
    if "alerting" not in request.fixturenames:
        yield
        return
    collector = request.getfixturevalue("alerting")
    before = _service_names(collector)
    yield
    with collector.admin as api:
        for name in _service_names(collector) - before:
            api.delete(f"/api/services/{name}")


def _service_names(collector) -> set[str]:
    with collector.admin as api:
        return {service["name"] for service in api.get("/api/services").json()}
