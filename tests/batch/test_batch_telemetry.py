"""A job with --service: one operation_Id, a `requests` row per mini-batch attempt, the script's
prints and logging as `traces`, failures as `exceptions`, outgoing HTTP as `dependencies`, progress as
`customMetrics`, the workers' console output in the service's console log; and `insights batch status`
reading it back through the query API."""

from __future__ import annotations

import orjson
from batch_jobs import batch_command


def _rows(collector, service: str, kql: str) -> list[dict]:
    rows = collector.query(kql, service=service)
    for row in rows:
        for column in ("customDimensions", "details"):
            if isinstance(row.get(column), str):
                row[column] = orjson.loads(row[column])
    return rows


def test_each_attempt_is_a_request_row_under_the_jobs_operation(collector, telemetry_job):
    job = telemetry_job
    requests = _rows(collector, job["service"], f'requests | where customDimensions.job == "{job["name"]}"')
    assert len(requests) == 8  # 5 mini-batches; b, c and d tried twice (c failed both times)
    assert len({r["operation_Id"] for r in requests}) == 1
    assert {r["name"] for r in requests} == {"run(mini_batch)"}
    by_outcome = {}
    for row in requests:
        by_outcome.setdefault(row["customDimensions"]["outcome"], []).append(row)
    assert len(by_outcome["succeeded"]) == 4 and all(r["success"] for r in by_outcome["succeeded"])
    assert len(by_outcome["failed"]) == 3 and not any(r["success"] for r in by_outcome["failed"])
    assert by_outcome["timed out"][0]["resultCode"] == "408"
    final_failure = [r for r in by_outcome["failed"] if r["customDimensions"]["final"] == "True"][0]
    assert final_failure["customDimensions"]["inputs"] == ["c.txt"]
    assert final_failure["customDimensions"]["items_failed"] == "1"
    assert final_failure["customDimensions"]["attempt"] == "2"
    timed_out = by_outcome["timed out"][0]
    assert timed_out["duration"] >= 1500


def test_prints_logging_and_exceptions_hang_under_their_attempt(collector, telemetry_job):
    job = telemetry_job
    where = f'where customDimensions.job == "{job["name"]}"'
    requests = {r["id"]: r for r in _rows(collector, job["service"], f"requests | {where}")}
    operation = next(iter(requests.values()))["operation_Id"]
    traces = _rows(collector, job["service"], f"traces | {where}")
    inits = [t for t in traces if str(t["customDimensions"].get("Contents", "")).startswith("init in")]
    assert len(inits) >= 2 and all(t["operation_Id"] == operation for t in inits)
    exceptions = _rows(collector, job["service"], f"exceptions | {where}")
    types = sorted(e["type"] for e in exceptions)
    assert types == ["RuntimeError", "TimeoutError", "ValueError", "ValueError"]
    for exception in exceptions:
        assert exception["operation_Id"] == operation
        assert exception["operation_ParentId"] in requests  # the attempt's request row
    raised = [e for e in exceptions if e["type"] == "ValueError"][0]
    assert raised["message"] == "cannot score c.txt" and raised["method"] == "run"


def test_progress_metrics_end_at_the_jobs_result(collector, telemetry_job):
    job = telemetry_job
    metrics = _rows(collector, job["service"], f'customMetrics | where customDimensions.job == "{job["name"]}" '
                                               "| summarize arg_max(timestamp, value, customDimensions) by name")
    latest = {m["name"]: m["value"] for m in metrics}
    assert latest == {"mini_batches_created": 5, "mini_batches_processed": 5, "mini_batches_failed": 1,
                      "items_succeeded": 4, "items_failed": 1, "retries": 3}
    assert {m["customDimensions"]["status"] for m in metrics} == {"Succeeded"}


def test_status_reads_the_job_back(telemetry_job):
    job = telemetry_job
    shown = batch_command("status", job["name"], env=job["env"])
    assert shown.returncode == 0, shown.stderr
    assert "Succeeded" in shown.stdout
    assert "5 of 5 processed, 1 failed, 3 retried" in shown.stdout
    assert "4 succeeded, 1 failed" in shown.stdout
    assert "ValueError" in shown.stdout and "cannot score c.txt" in shown.stdout


def test_status_of_an_unknown_job_says_so(telemetry_job):
    job = telemetry_job
    shown = batch_command("status", "no-such-job", env=job["env"])
    assert shown.returncode == 1
    assert "no telemetry for job 'no-such-job'" in shown.stderr


def test_outgoing_http_calls_are_dependencies_under_their_attempt(collector, calling_job):
    job = calling_job
    where = f'where customDimensions.job == "{job["name"]}"'
    requests = {r["id"]: r for r in _rows(collector, job["service"], f"requests | {where}")}
    operation = next(iter(requests.values()))["operation_Id"]
    calls = _rows(collector, job["service"], f"dependencies | {where} | order by timestamp asc")
    assert [c["name"] for c in calls] == ["GET /init", "GET /score/a.txt", "GET /score/b.txt", "GET /score/c.txt"]
    assert all(c["operation_Id"] == operation for c in calls)  # init()'s call too
    assert {c["target"] for c in calls} == {f"127.0.0.1:{job['port']}"}
    assert {(c["type"], c["resultCode"], c["success"]) for c in calls} == {("HTTP", "200", True)}
    by_file = {c["name"].rsplit("/", 1)[1]: c for c in calls[1:]}
    parents = {r["customDimensions"]["inputs"][0]: r["id"] for r in requests.values()}
    assert by_file["a.txt"]["operation_ParentId"] == by_file["b.txt"]["operation_ParentId"] == parents["a.txt"]
    assert by_file["c.txt"]["operation_ParentId"] == parents["c.txt"]
    # the called service saw the job's trace: W3C traceparent 00-<operation_Id>-<the call's id>-01
    sent = dict(job["calls"])
    assert sent["/score/c.txt"] == f"00-{operation}-{by_file['c.txt']['id']}-01"


def test_the_workers_console_output_is_the_services_console_log(collector, calling_job):
    job = calling_job
    with collector.admin as client:  # what `insights logs SERVICE` reads
        response = client.get(f"/api/services/{job['service']}/logs", params={"lines": 100})
    assert response.status_code == 200, response.text
    lines = response.json()["lines"]
    text = [line["line"] for line in lines]
    assert text[0].startswith(f"[insights] batch job {job['name']} started: 3 files in 2 mini-batches")
    # the lines are in arrival order: a worker's last lines may land after the runner's own last one
    runner = [line for line in text if line.startswith("[insights]")]
    assert runner[-1] == f"[insights] batch job {job['name']} succeeded: 2 of 2 mini-batches succeeded"
    workers = [line for line in lines if line["instance"] == f"{job['name']}/process000"]
    printed = [line["line"] for line in workers if line["stream"] == "stdout"]
    assert "init: called the model store" in printed and "scored c.txt" in printed
    assert any(line.endswith("WARNING calls_score: called the scorer for b.txt") for line in printed)
    # and the log layout still has all of it
    stdout = next(job["out"].glob("logs/user/stdout/*/process000.stdout.txt")).read_text()
    assert "init: called the model store\n" in stdout and "called the scorer for c.txt" in stdout
