import os
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings

sys.path.insert(0, str(Path(__file__).parent))
from collector_process import NO_PHONE_HOME, CollectorProcess, exports_under  # noqa: E402

os.environ.update(NO_PHONE_HOME)
# `insights up` writes, and every command reads, the user config under XDG_CONFIG_HOME: the tests' own,
# empty, never the machine's.
os.environ["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="insights-tests-xdg-")

# In CI the generated tests replay the same examples every run: a red build then means a change broke
# something, not that the generator happened upon an old bug that day (run locally to explore).
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


@pytest.fixture(autouse=True)
def _own_user_config(tmp_path_factory, monkeypatch):
    """Each test its own, empty XDG_CONFIG_HOME: a test that runs `insights up` writes the user config
    there, and a later test looking for a missing key must not find that one."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg")))


@pytest.fixture(autouse=True)
def _keep_main():
    """Streamlit's AppTest runs the dashboard's script as `__main__` and leaves it there; every
    process spawned afterwards (the in-process app's ingestion workers, the KQL compile workers)
    re-runs the parent's main script first and dies on that one."""
    main = sys.modules["__main__"]
    yield
    sys.modules["__main__"] = main


@pytest.fixture(scope="session")
def collector(tmp_path_factory):
    """One real collector process for the session; each test makes its own service(s)."""
    process = CollectorProcess(tmp_path_factory.mktemp("collector") / "data",
                               env=exports_under(tmp_path_factory.getbasetemp())).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def app_collector(tmp_path_factory):
    """The collector's app in this process (see in_process.py), for the session; each test makes its
    own service(s). For tests of answers and stored rows over HTTP that need no real socket."""
    from in_process import InProcessCollector  # imports the app: only for the tests that use it

    collector = InProcessCollector(tmp_path_factory.mktemp("app-collector") / "data",
                                   export_roots=(tmp_path_factory.getbasetemp(),), export_allow_http=True).start()
    yield collector
    collector.stop()
