"""SIGTERM cancels a job gracefully: nothing new is scheduled, the mini-batch in flight finishes, the
logs and the telemetry end with the result "canceled", and the exit code is non-zero."""

from __future__ import annotations

import csv
import os
import signal
import time

import orjson


def _wait_for(path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def test_sigterm_lets_the_mini_batch_in_flight_finish_and_ends_canceled(run_job, collector):
    service = collector.create_service("cancel")["name"]
    files = {"a.txt": "sleep 1.5", **{f"f{i}.txt": "fine" for i in range(9)}}
    job = run_job.start("flaky_score.py", files, mini_batch_size=1, workers=1, service=service)
    _wait_for(run_job.state / "a.txt")  # run() is sleeping on mini-batch 0
    os.killpg(job.process.pid, signal.SIGTERM)  # the whole group, workers too, as a terminal or runtime does
    finished = job.finish()

    assert finished.code == 143, finished.stderr
    assert f"job {finished.job} canceled" in finished.stderr
    with open(finished.output / "predictions.csv") as handle:
        assert list(csv.reader(handle)) == [["a.txt", "9"]]  # finished; nothing after it was scheduled
    overview = finished.log("job_progress_overview.txt")
    assert "Status: Canceled" in overview
    assert "Result: canceled by SIGTERM: 1 of 10 mini-batches processed; 9 not run" in overview
    master = finished.log("sys/master_role.txt")
    assert "SIGTERM: scheduling stopped; waiting for the 1 mini-batch(es) in flight (0)" in master
    assert f"job {finished.job} canceled: canceled by SIGTERM" in master

    where = f'where customDimensions.job == "{finished.job}"'
    metrics = {row["name"]: row for row in collector.query(
        f"customMetrics | {where} | summarize arg_max(timestamp, value, customDimensions) by name", service=service)}
    assert metrics["mini_batches_processed"]["value"] == 1
    assert orjson.loads(metrics["mini_batches_processed"]["customDimensions"])["status"] == "Canceled"
    requests = collector.query(f"requests | {where}", service=service)
    assert [orjson.loads(r["customDimensions"])["outcome"] for r in requests] == ["succeeded"]


def test_a_second_sigterm_stops_the_mini_batch_in_flight_too(run_job):
    job = run_job.start("flaky_score.py", {"a.txt": "sleep 30", "b.txt": "fine"}, mini_batch_size=1, workers=1)
    _wait_for(run_job.state / "a.txt")
    os.killpg(job.process.pid, signal.SIGTERM)
    master = job.output / "logs" / "sys" / "master_role.txt"
    deadline = time.monotonic() + 10
    while "SIGTERM: scheduling stopped" not in master.read_text():
        assert time.monotonic() < deadline
        time.sleep(0.02)
    os.killpg(job.process.pid, signal.SIGTERM)
    finished = job.finish(timeout=15)
    assert finished.code == 143, finished.stderr
    assert ("Result: canceled by SIGTERM: 0 of 2 mini-batches processed; 2 not finished (1 stopped in flight by a "
            "second SIGTERM)") in finished.log("job_progress_overview.txt")
    assert (finished.output / "predictions.csv").read_text() == ""
