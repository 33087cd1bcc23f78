"""Fixtures of the export tests: a collector with export on, Azurite, and ways to read what was exported."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from azurite import Azurite  # noqa: E402
from collector_process import CollectorProcess, exports_under  # noqa: E402


@pytest.fixture(scope="session")
def exporting(tmp_path_factory):
    """One collector process with continuous export, shared by the export tests (each makes its own service)."""
    process = CollectorProcess(tmp_path_factory.mktemp("exporting") / "data",
                               env=exports_under(tmp_path_factory.getbasetemp())).start()
    yield process
    process.stop()


@pytest.fixture(scope="session")
def azurite(tmp_path_factory):
    emulator = Azurite(tmp_path_factory.mktemp("azurite"))
    emulator.start()
    yield emulator
    emulator.stop()
