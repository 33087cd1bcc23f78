"""The dashboard process stops with whatever started it: cleanly on stop_dashboard, and also when
its parent (`insights up`) is killed outright, so no orphan keeps the port. `insights up` and
`insights dashboard --login-link` print a one-click login link that works once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
from collector_process import NO_PHONE_HOME, free_port

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


def _redeems_once(collector_url: str, link: str, admin_key: str) -> bool:
    token = link.split("?token=", 1)[1]
    redeem = f"{collector_url}/api/dashboard/tokens/redeem"
    first = httpx.post(redeem, headers={"x-dashboard-token": token}, timeout=10)
    second = httpx.post(redeem, headers={"x-dashboard-token": token}, timeout=10)
    return first.json().get("api_key") == admin_key and second.status_code == 401


def test_insights_up_prints_a_login_link_that_works_once(tmp_path):
    port, dashboard_port = free_port(), free_port()
    env = {**os.environ, "INSIGHTS_API_KEY": "up-admin-key", **NO_PHONE_HOME}
    up = subprocess.Popen([sys.executable, "-m", "insights", "up", "--data-dir", str(tmp_path / "data"), "--port", str(port),
                           "--dashboard-port", str(dashboard_port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and not any("?token=" in line for line in lines):
            line = up.stdout.readline()
            if not line:
                break
            lines.append(line)
        link = next((word for line in lines for word in line.split() if "?token=" in word), None)
        assert link and link.startswith(f"http://127.0.0.1:{dashboard_port}/?token="), "".join(lines)
        assert _redeems_once(f"http://127.0.0.1:{port}", link, "up-admin-key")
    finally:
        up.terminate()
        up.wait(timeout=30)


def test_insights_dashboard_login_link(collector, monkeypatch):
    from typer.testing import CliRunner

    from insights.cli import app

    monkeypatch.setenv("INSIGHTS_API_KEY", collector.admin_key)
    printed = CliRunner().invoke(app, ["dashboard", "--collector", collector.url, "--port", "8599", "--login-link"])
    assert printed.exit_code == 0, printed.output
    assert _redeems_once(collector.url, printed.output.strip(), collector.admin_key)
    monkeypatch.setenv("INSIGHTS_API_KEY", "not-the-admin-key")
    refused = CliRunner().invoke(app, ["dashboard", "--collector", collector.url, "--login-link"])
    assert refused.exit_code == 1 and "refused (401)" in refused.output
