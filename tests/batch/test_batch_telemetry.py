"""A job with --service: one operation_Id, a `requests` row per mini-batch attempt, the script's
prints and logging as `traces`, failures as `exceptions`, progress as `customMetrics`; and
`insights batch status` reading it back through the query API."""

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
