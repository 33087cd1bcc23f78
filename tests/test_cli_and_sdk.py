"""The `insights` command line and the Python SDK against a real collector."""

import json
import os
import subprocess
import sys

import pytest
from wait import rows_eventually

from collector.client import ApiError, CollectorUnreachable, Webservice, Workspace


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
    # a service's own key (in clear only in create's answer) reads that service, and nothing of the others'
    assert svc.api_key == created.api_key[:6] + "…"
    own = Workspace(collector.url, api_key=created.api_key)
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
        _ = Workspace("http://127.0.0.1:9", api_key="x").webservices


def test_missing_key_names_every_place_looked_at(collector, tmp_path):
    """No INSIGHTS_API_KEY and no admin.key: the CLI's 401 says where it looked, so where to put one."""
    env = {k: v for k, v in os.environ.items() if k not in ("INSIGHTS_API_KEY", "INSIGHTS_DATA_DIR")}
    env.update(INSIGHTS_URL=collector.url, COLUMNS="1000")
    result = subprocess.run([sys.executable, "-m", "collector", "service", "list"], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1, result.stdout
    assert "401: missing key" in result.stderr
    assert "INSIGHTS_API_KEY" in result.stderr
    assert str(tmp_path.resolve() / "insights-data" / "admin.key") in result.stderr


def test_refused_key_says_where_it_came_from(collector, tmp_path, monkeypatch):
    monkeypatch.delenv("INSIGHTS_DATA_DIR", raising=False)
    monkeypatch.setenv("INSIGHTS_URL", collector.url)
    monkeypatch.setenv("INSIGHTS_API_KEY", "not-the-admin-key")
    with pytest.raises(ApiError) as error:
        Workspace().request("GET", "/api/services")
    assert error.value.status_code == 401 and error.value.message == "invalid key"
    assert "the key came from INSIGHTS_API_KEY" in str(error.value)
    monkeypatch.delenv("INSIGHTS_API_KEY")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ApiError) as error:
        Workspace().request("GET", "/api/services")
    user_config = os.path.join(os.environ["XDG_CONFIG_HOME"], "insights", "config.json")
    assert error.value.hint == (f"no key: looked at INSIGHTS_API_KEY, {user_config}, "
                                f"{tmp_path.resolve() / 'insights-data' / 'admin.key'}")


def _seed_prints(collector, service):
    lines = [json.dumps({"itemType": "trace", "timestamp": f"2026-11-23T16:5{i}:00Z", "message": "STDOUT",
                         "customDimensions": {"Contents": {"input": [i], "output": i * 2}}}).encode() for i in range(3)]
    assert collector.import_rows(service["name"], lines)["imported"] == 3


def test_query_command_in_every_format(collector):
    service = collector.create_service("cli-query")
    _seed_prints(collector, service)
    kql = ('traces | where customDimensions contains "input" '
           '| project timestamp, out = toint(customDimensions.Contents.output) | order by timestamp asc')
    as_json = json.loads(insights(collector, "query", "--service", service["name"], "--format", "json", kql).stdout)
    assert as_json == [{"timestamp": f"2026-11-23T16:5{i}:00Z", "out": i * 2} for i in range(3)]
    as_csv = insights(collector, "query", "--service", service["name"], "--format", "csv", kql).stdout.splitlines()
    assert as_csv == ["timestamp,out", "2026-11-23T16:50:00Z,0", "2026-11-23T16:51:00Z,2", "2026-11-23T16:52:00Z,4"]
    table = insights(collector, "query", "--service", service["name"], kql).stdout
    assert "timestamp" in table and "3 rows" in table
    explained = insights(collector, "query", "--explain", "--service", service["name"], kql).stdout
    assert "SELECT" in explained and f"'{service['name']}'" in explained
    bad = insights(collector, "query", "traces | where nope == 1", check=False)
    assert bad.returncode == 1 and "unknown column 'nope'" in bad.stderr and "line 1" in bad.stderr


def test_sdk_query_returns_a_dataframe_scoped_to_the_service(collector):
    service = collector.create_service("sdk-query")
    other = collector.create_service("sdk-query-other")
    _seed_prints(collector, service)
    _seed_prints(collector, other)
    svc = Webservice(Workspace(collector.url, api_key=collector.admin_key), service["name"])
    frame = svc.query("traces | summarize n = count(), total = sum(toint(customDimensions.Contents.output))")
    assert frame.to_dict("records") == [{"n": 3, "total": 6}]
    own = Workspace(collector.url, api_key=service["api_key"])
    assert len(own.query("traces")) == 3  # a service key never sees the other service's rows
    assert str(own.query("traces | take 1")["timestamp"].dtype).startswith("datetime64")
