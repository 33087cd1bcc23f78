"""Availability tests against a real `insights score` wrapper, made with the real CLI from its
scoring URI (the sample input read from its /swagger.json): every run lands in
availabilityResults; the wrapper goes down (an availability rule fires) and comes back (it resolves)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import httpx
from alert_helpers import wait_for
from collector_process import NO_PHONE_HOME, free_port

SCRIPT = Path(__file__).parent.parent / "scoring" / "scripts" / "schema_score.py"


def _insights(collector, *args: str) -> str:
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "COLUMNS": "200"}
    done = subprocess.run([shutil.which("insights"), *args], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


class Wrapper:
    def __init__(self, service: dict, folder: Path):
        self.service, self.folder, self.port = service, folder, free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        env = {**os.environ, **NO_PHONE_HOME, "APPLICATIONINSIGHTS_CONNECTION_STRING": self.service["connection_string"]}
        self.process = subprocess.Popen(
            [shutil.which("insights"), "score", "--entry_script", str(SCRIPT), "--port", str(self.port),
             "--service", self.service["name"], "--spool_dir", str(self.folder / "spool")],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self._ready, 60, "the wrapper")

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/ready", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def test_a_probe_of_a_wrapper_that_goes_down_and_comes_back_fires_then_resolves(alerting, receiver, tmp_path):
    service = alerting.create_service("probe")
    name = service["name"]
    wrapper = Wrapper(service, tmp_path)
    wrapper.start()
    try:
        out = _insights(alerting, "availability", "create", "score-probe", "--service", name,
                        "--from-score", f"{wrapper.url}/score", "--frequency", "1", "--timeout", "10")
        assert "POST" in out and "expects 200" in out
        test = _insights(alerting, "availability", "list", "--service", name)
        assert "score-probe" in test
        _insights(alerting, "action-group", "create", "ops", "--service", name, "--webhook", receiver.url)
        _insights(alerting, "alert", "rule", "create", "availability", "--service", name, "--frequency", "1",
                  "--window", "3", "--split-by", "name", "--measure", "min(availability)", "--operator", "<",
                  "--threshold", "90", "--severity", "Sev1", "-g", "ops", "--query",
                  "availabilityResults | summarize availability = 100.0 * countif(success == true) / count() by name")
        passed = wait_for(lambda: alerting.query("availabilityResults | where success == true", service=name), 60,
                          "a passing run")[0]
        assert passed["name"] == "score-probe" and passed["location"] == "local" and passed["size"] > 0
        assert passed["message"] == "Passed" and passed["duration"] > 0 and passed["itemType"] == "availabilityResult"
        wrapper.stop()
        wait_for(lambda: receiver.conditions() == ["Fired"], 60, "the availability alert to fire")
        failed = alerting.query("availabilityResults | where success == false | take 1", service=name)[0]
        assert "ConnectError" in failed["message"]
        wrapper.start()
        # (on a loaded machine a later probe may time out and fire it again: the first two are the test)
        wait_for(lambda: receiver.conditions()[:2] == ["Fired", "Resolved"], 60, "the alert to resolve")
    finally:
        if wrapper.process.poll() is None:
            wrapper.stop()
    fired = receiver.received()[0]["json"]["data"]["alertContext"]["condition"]["allOf"][0]
    assert fired["dimensions"] == [{"name": "name", "value": "score-probe"}] and fired["metricValue"] < 90
    listing = _insights(alerting, "alert", "list", "--service", name)
    assert "availability" in listing and "score-probe" in listing
