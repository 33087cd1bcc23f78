"""The `insights` command line and the Python SDK against a real collector."""

import json
import os
import subprocess
import sys

import pytest

from collector.client import ApiError, CollectorUnreachable, Webservice, Workspace
from wait import rows_eventually


def insights(collector, *args, check=True):
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "collector", *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert result.returncode == 0, result.stderr + result.stdout
    return result


def test_service_lifecycle_from_the_command_line(collector):
    created = insights(collector, "service", "create", "cli-svc-1")
    assert "InstrumentationKey=" in created.stdout and "IngestionEndpoint=http://127.0.0.1" in created.stdout
    assert "cli-svc-1" in insights(collector, "service", "list").stdout
    insights(collector, "service", "update", "cli-svc-1", "--disable-app-insights")
    shown = insights(collector, "service", "show", "cli-svc-1").stdout
    assert "False" in shown and "dropped_disabled" in shown
    insights(collector, "service", "delete", "cli-svc-1", "--yes")
    missing = insights(collector, "service", "show", "cli-svc-1", check=False)
    assert missing.returncode == 1 and "no service named 'cli-svc-1'" in missing.stderr


def test_bad_service_names_are_refused_with_the_rule(collector):
    result = insights(collector, "service", "create", "no spaces!", check=False)
    assert result.returncode == 1 and "3 to 32 letters, digits or '-'" in result.stderr


def test_import_keeps_good_lines_and_reports_bad_ones_by_line(collector, tmp_path):
    service = collector.create_service("cli-import")
    rows = tmp_path / "rows.blob"
    rows.write_text("\n".join([
        json.dumps({"itemType": "trace", "timestamp": "2026-11-23T16:53:49.943891Z", "message": "one",
                    "severityLevel": 1, "customDimensions": {"input": {"x": 1}}}),
        "{not json",
        json.dumps({"itemType": "request", "timestamp": "2026-11-23T16:53:50Z", "duration": "slow"}),
        json.dumps({"itemType": "trace", "timestamp": "2026-11-23T16:53:51Z", "message": "two", "colour": "red"}),
        json.dumps({"itemType": "request", "timestamp": "2026-11-23T16:53:52Z", "name": "POST /score", "duration": 12.5,
                    "success": True, "resultCode": "200"}),
    ]) + "\n")
    result = insights(collector, "import", "--service", service["name"], str(rows), check=False)
    assert result.returncode == 1
    errors = result.stderr
    assert f"{rows}:2: not valid JSON" in errors
    assert f"{rows}:3: duration: expected a number" in errors
    assert f"{rows}:4: colour: unknown column for table traces" in errors
    (trace,) = rows_eventually(collector, "traces", service)
    assert trace["message"] == "one" and trace["customDimensions"] == {"input": {"x": 1}}
    (request,) = rows_eventually(collector, "requests", service)
    assert (request["name"], request["duration"], request["success"]) == ("POST /score", 12.5, True)


def test_sdk_in_the_shape_azure_ml_users_know(collector):
    ws = Workspace(collector.url, api_key=collector.admin_key)
    created = ws.create_service("sdk-svc-1")
    svc = Webservice(ws, "sdk-svc-1")
    assert svc.connection_string == created.connection_string and svc.enable_app_insights
    svc.update(enable_app_insights=False)
    assert Webservice(ws, "sdk-svc-1").enable_app_insights is False
    assert "sdk-svc-1" in ws.webservices
    assert svc.stats()["received"] == 0
    with pytest.raises(ApiError) as error:
        Webservice(ws, "sdk-nope")
    assert error.value.status_code == 404
    # a service's own key reads that service, and nothing of the others'
    own = Workspace(collector.url, api_key=svc.api_key)
    assert Webservice(own, "sdk-svc-1").name == "sdk-svc-1"
    with pytest.raises(ApiError) as error:
        Webservice(own, collector.create_service("sdk-other")["name"])
    assert error.value.status_code == 404
    with pytest.raises(ApiError) as error:
        own.create_service("sdk-svc-2")
    assert error.value.status_code == 403
    svc.delete()


def test_unreachable_collector_says_what_to_run():
    with pytest.raises(CollectorUnreachable, match="insights up"):
        Workspace("http://127.0.0.1:9", api_key="x").webservices
