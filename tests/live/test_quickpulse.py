"""The Azure Monitor OpenTelemetry distro, unmodified, with `enable_live_metrics=True` and the
connection string the collector hands out (its `LiveEndpoint=` points at the collector): its
QuickPulse client pings, is told someone watches, and posts each second; the instance shows up in
the live stream with the SDK's CPU, memory and per-second rates. Under net_guard: it connects to
nothing but 127.0.0.1."""

from __future__ import annotations

import subprocess
import sys
import time

import net_guard
import readme_snippets
from collector_process import NO_PHONE_HOME

from collector.client import LiveMetrics, Workspace

APP = """
import time
from azure.monitor.opentelemetry import configure_azure_monitor
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource

configure_azure_monitor(enable_live_metrics=True, disable_offline_storage=True,
                        resource=Resource.create({"service.name": "qp-app", "service.instance.id": "qp-1"}))
tracer = trace.get_tracer(__name__)
end = time.time() + 40
while time.time() < end:
    with tracer.start_as_current_span("GET /x", kind=trace.SpanKind.SERVER) as span:
        span.set_attribute("http.request.method", "GET")
        span.set_attribute("http.response.status_code", 200)
    time.sleep(0.1)
"""


def test_the_distro_streams_live_metrics_to_the_collector(collector, tmp_path):
    service = collector.create_service("quickpulse")
    assert f"LiveEndpoint={collector.url}/" in service["connection_string"]
    live = LiveMetrics(Workspace(collector.url, api_key=collector.admin_key), service["name"])
    live.snapshot()  # someone watches: the collector answers the SDK's ping with subscribed=true
    log = tmp_path / "attempts.jsonl"
    env = net_guard.environment(log, readme_snippets.user_environment())
    env.update({**NO_PHONE_HOME, "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS": "otel",
                "APPLICATIONINSIGHTS_CONNECTION_STRING": service["connection_string"]})
    app = subprocess.Popen([sys.executable, "-c", APP], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline, reported = time.monotonic() + 25, None
        while reported is None and time.monotonic() < deadline:
            time.sleep(0.5)
            for instance in live.snapshot(seconds=5)["instances"]:
                sdk = (instance["processes"] or [{}])[0].get("sdkMetrics") or {}
                if instance["instance"] == "qp-1" and sdk.get("requestsPerSecond"):
                    reported = instance
    finally:
        app.terminate()
        output = app.communicate(timeout=30)[0].decode(errors="replace")
    assert reported is not None, f"no QuickPulse post arrived; the app said:\n{output[-3000:]}"
    assert reported["role"] == "qp-app" and reported["healthy"]
    assert reported["memoryBytes"] > 10 * 2**20 and reported["cpuPercent"] is not None
    assert reported["processes"][0]["name"].startswith("QuickPulse")
    assert net_guard.attempts(log) == [], net_guard.attempts(log)
