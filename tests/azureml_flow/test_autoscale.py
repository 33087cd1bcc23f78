"""Autoscale and reload of a wrapper's workers, for real: a spike against a deployment whose run()
waits on I/O, with autoscale off and on (more instances, more answers, fewer 429s), the scale events
as customEvents in the collector; and a reload whose new init() fails leaving the old workers serving."""

from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest
from wait import rows_eventually

from collector.client import DeploymentFailed, LocalWebservice, Workspace

SLEEPY = "import time\ndef init():\n    print('init {tag}')\ndef run(raw):\n    time.sleep(0.1)\n    return '{tag}'\n"


def _spike(url: str, clients: int, seconds: float, until=None) -> Counter:
    """`clients` closed-loop clients (100 ms of back-off after an error) for `seconds`; with `until`,
    first for as long as it is false (at most 60 s), and only the `seconds` after it count."""
    statuses: Counter = Counter()
    counting = threading.Event()
    stop = [time.monotonic() + 60]

    def client() -> None:
        with httpx.Client(timeout=30, trust_env=False) as http:
            while time.monotonic() < stop[0]:
                status = http.post(url, content=b"{}", headers={"content-type": "application/json"}).status_code
                if counting.is_set():
                    statuses[status] += 1
                if status != 200:
                    time.sleep(0.1)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()
    while until is not None and not until() and time.monotonic() < stop[0]:
        time.sleep(0.2)
    counting.set()
    stop[0] = time.monotonic() + seconds
    for thread in threads:
        thread.join()
    return statuses


def _deploy(ws: Workspace, name: str, script, **options) -> LocalWebservice:
    config = LocalWebservice.deploy_configuration(enable_app_insights=True, max_concurrent_requests=1, **options)
    return LocalWebservice.deploy(ws, name, script, deployment_config=config)


def test_a_spike_scales_the_workers_out_and_back_with_fewer_429s(collector, tmp_path):
    ws = Workspace(collector.url, api_key=collector.admin_key)
    script = tmp_path / "score.py"
    script.write_text(SLEEPY.format(tag="v1"))
    service_off = _deploy(ws, collector.create_service("spike-off")["name"], script)
    try:
        off = _spike(service_off.scoring_uri, 8, 4)
    finally:
        service_off.delete()
    name = collector.create_service("spike-on")["name"]
    service = _deploy(ws, name, script, autoscale_enabled=True, autoscale_min_replicas=1, autoscale_max_replicas=4,
                      autoscale_target_utilization=70, autoscale_refresh_seconds=0.5)
    try:  # the same 4 s of spike, counted once the added workers are ready (their start is slow on busy cores)
        on = _spike(service.scoring_uri, 8, 4, until=lambda: service.wrapper_status().get("ready_workers", 0) >= 3)
        peak = max(event["to"] for event in service.wrapper_status()["scale_events"])
        deadline = time.monotonic() + 30
        while service.wrapper_status()["workers"] > 1 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert service.wrapper_status()["workers"] == 1, service.wrapper_status()  # back to the minimum
    finally:
        service.delete()
    assert peak >= 3, (peak, on)
    assert on[200] > 2 * off[200] and on[429] < off[429], (on, off)
    events = rows_eventually(collector, "customEvents", {"name": name}, count=2, timeout=20,
                             where='| where name == "Autoscale" | take 2')
    assert events[0]["customDimensions"]["from"] == "1" and events[0]["customMeasurements"]["instances"] >= 2


def test_a_reload_whose_init_fails_keeps_the_old_workers(collector, tmp_path):
    ws = Workspace(collector.url, api_key=collector.admin_key)
    script = tmp_path / "score.py"
    script.write_text(SLEEPY.format(tag="old"))
    with _deploy(ws, collector.create_service("reload-fail")["name"], script, worker_count=2) as service:
        script.write_text("def init():\n    raise RuntimeError('broken model')\ndef run(raw):\n    return 1\n")
        with pytest.raises(DeploymentFailed, match="previous workers keep serving") as failed:
            service.reload()
        assert "RuntimeError: broken model" in failed.value.logs
        assert service.run("{}") == "old" and service.wrapper_status()["workers"] == 2
        script.write_text(SLEEPY.format(tag="new"))
        service.reload()
        assert service.run("{}") == "new" and service.wrapper_status()["generation"] == 1


def test_autoscale_flags_that_cannot_work_are_refused(tmp_path):
    import os
    import subprocess
    import sys

    script = tmp_path / "score.py"
    script.write_text(SLEEPY.format(tag="x"))
    for flags, message in ((["--autoscale_min_replicas", "3", "--autoscale_max_replicas", "2"], "need 1 <= min <= max"),
                           (["--autoscale_target_utilization", "0"], "a percentage, 1 to 100"),
                           (["--autoscale_refresh_seconds", "0"], "must be above 0")):
        done = subprocess.run([sys.executable, "-m", "scoring", "score", "--entry_script", str(script), "--autoscale_enabled",
                               *flags], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "APPLICATIONINSIGHTS_CONNECTION_STRING": ""})
        assert done.returncode == 2 and message in done.stderr, done.stderr
