"""The dashboard process stops with whatever started it: cleanly on stop_dashboard, and also when
its parent (`insights up`) is killed outright, so no orphan keeps the port."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from collector_process import free_port

from dashboard.launcher import run_dashboard, stop_dashboard, wait_ready

PARENT = """
import sys, time
from dashboard.launcher import run_dashboard
process = run_dashboard("http://127.0.0.1:9", int(sys.argv[1]), "key")
print(process.pid, flush=True)
time.sleep(600)
"""


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_stop_dashboard_stops_it():
    port = free_port()
    process = run_dashboard("http://127.0.0.1:9", port, "key", log_file=subprocess.DEVNULL)
    try:
        assert wait_ready(port, process)
    finally:
        stop_dashboard(process)
    assert process.returncode is not None


def test_dashboard_exits_when_its_parent_is_killed():
    port = free_port()
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(port)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    try:
        assert wait_ready(port)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _gone(child), "the dashboard outlived the process that started it"
    finally:
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
