import os
import sys
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import NO_PHONE_HOME, CollectorProcess  # noqa: E402

os.environ.update(NO_PHONE_HOME)

# In CI the generated tests replay the same examples every run: a red build then means a change broke
# something, not that the generator happened upon an old bug that day (run locally to explore).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(scope="session")
def collector(tmp_path_factory):
    """One real collector process for the session; each test makes its own service(s)."""
    process = CollectorProcess(tmp_path_factory.mktemp("collector") / "data").start()
    yield process
    process.stop()
