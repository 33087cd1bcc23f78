"""The Azure Monitor OpenTelemetry distro (`configure_azure_monitor`), unmodified, run as the README
says: it connects to nothing but the collector on 127.0.0.1, and its telemetry arrives.

The child runs under net_guard, which refuses any other address at the socket (before a packet
leaves) and writes the attempt down; the test fails on any attempt. The control run, with only the
connection string, shows that the guard sees what the distro does by default (the Azure VM
resource detector's instance-metadata lookup, Live Metrics)."""

import subprocess
import sys

import net_guard
import readme_snippets
from wait import rows_eventually


def _connection(collector, service) -> dict:
    return {"APPLICATIONINSIGHTS_CONNECTION_STRING": service["connection_string"]}


def test_distro_with_the_readme_settings_calls_only_the_collector(collector, tmp_path):
    service = collector.create_service("distro")
    settings = readme_snippets.exports()
    assert {"APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"} <= set(settings)
    log = tmp_path / "attempts.jsonl"
    done = readme_snippets.run("distro", log, {**settings, **_connection(collector, service)})
    assert done.returncode == 0, done.stderr
    assert net_guard.attempts(log) == [], net_guard.attempts(log)
    assert "Traceback" not in done.stderr, done.stderr
    (request,) = rows_eventually(collector, "requests", service)
    (trace,) = rows_eventually(collector, "traces", service)
    assert request["name"] == "POST /score" and trace["message"] == "scored"
    assert trace["operation_Id"] == request["operation_Id"]


def test_the_guard_sees_what_the_distro_calls_by_default(collector, tmp_path):
    service = collector.create_service("distro-bare")
    log = tmp_path / "attempts.jsonl"
    code = ("import os, pathlib, time\nfrom azure.monitor.opentelemetry import configure_azure_monitor\n"
            "configure_azure_monitor()\nlog, deadline = pathlib.Path(os.environ['NET_GUARD_LOG']), time.monotonic() + 20\n"
            "while time.monotonic() < deadline and 'visualstudio.com' not in (log.read_text() if log.exists() else ''):\n"
            "    time.sleep(0.2)\n")
    child = net_guard.environment(log, readme_snippets.user_environment())
    # Without the LiveEndpoint= our connection strings carry (as from the portal): Live Metrics' default is Microsoft's.
    child.update({"APPLICATIONINSIGHTS_CONNECTION_STRING": service["connection_string"].split(";LiveEndpoint=")[0]})
    done = subprocess.run([sys.executable, "-c", code], env=child, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    targets = {attempt["target"] for attempt in net_guard.attempts(log)}
    assert "'169.254.169.254'" in targets, targets  # the Azure VM detector asks the instance metadata service
    assert any("visualstudio.com" in target or "monitor.azure.com" in target for target in targets), targets  # Live Metrics
