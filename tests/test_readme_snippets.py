"""The README's Python snippets, run verbatim against a real collector, under a guard that refuses
any connection beyond 127.0.0.1 (see readme_snippets.py and net_guard.py)."""

import time

import net_guard
import orjson
import readme_snippets
from wait import rows_eventually


def test_the_tested_snippets_are_the_ones_this_file_runs():
    assert set(readme_snippets.snippets()) == {"distro", "logs-query", "live-sdk"}


def test_distro_snippet_sends_to_the_collector_alone(collector, tmp_path):
    service = collector.create_service("readme-distro")
    log = tmp_path / "attempts.jsonl"
    env = {**readme_snippets.exports(), "APPLICATIONINSIGHTS_CONNECTION_STRING": service["connection_string"]}
    done = readme_snippets.run("distro", log, env)
    assert done.returncode == 0, done.stderr
    assert net_guard.attempts(log) == []
    assert rows_eventually(collector, "traces", service)[0]["message"] == "scored"


def test_logs_query_snippet_reads_the_service(collector, tmp_path):
    service = collector.create_service("readme-query")
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    rows = [{"itemType": "request", "timestamp": stamp, "name": "POST /score", "resultCode": code, "success": code == "200",
             "duration": 3.0} for code in ("200", "200", "500")]
    assert collector.import_rows(service["name"], [orjson.dumps(row) for row in rows])["imported"] == 3
    log = tmp_path / "attempts.jsonl"
    done = readme_snippets.run("logs-query", log, {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": service["api_key"]})
    assert done.returncode == 0, done.stderr
    assert net_guard.attempts(log) == []
    assert "['resultCode', 'count_']" in done.stdout, done.stdout
    assert "['200', 2]" in done.stdout and "['500', 1]" in done.stdout, done.stdout


def test_live_sdk_snippet_streams_and_reads_the_map(collector, tmp_path):
    with collector.admin as admin:
        created = admin.post("/api/services", json={"name": "my-service", "enable_app_insights": True})
    assert created.status_code in (201, 200, 409), created.text  # the name the snippet watches
    log = tmp_path / "attempts.jsonl"
    done = readme_snippets.run("live-sdk", log, {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key})
    assert done.returncode == 0, done.stderr
    assert net_guard.attempts(log) == []
    assert "{'count': 0, 'failed': 0" in done.stdout or "'count':" in done.stdout, done.stdout
