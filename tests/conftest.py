import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import NO_PHONE_HOME, CollectorProcess  # noqa: E402

os.environ.update(NO_PHONE_HOME)


@pytest.fixture(scope="session")
def collector(tmp_path_factory):
    """One real collector process for the session; each test makes its own service(s)."""
    process = CollectorProcess(tmp_path_factory.mktemp("collector") / "data").start()
    yield process
    process.stop()
