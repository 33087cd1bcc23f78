"""Real jobs end to end: the output file, the log layout, retries, timeouts, the error threshold."""

from __future__ import annotations

import csv
import re

NUMBERS = {f"f{i:02d}.txt": str(i) for i in range(1, 26)}


def _node_lines(finished) -> list[dict]:
    lines = []
    for path in sorted(finished.logs.glob("sys/node/*/process*.txt")):
        for line in path.read_text().splitlines():
            lines.append(dict(re.findall(r"(\w+)=(\S+)", line)))
    return lines


def _overview(finished) -> dict:
    text = finished.log("job_progress_overview.txt")
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def test_a_job_scores_every_file_and_writes_the_layout(run_job):
    finished = run_job("good_score.py", NUMBERS, workers=2, resource_monitor_interval=0.2)
    assert finished.code == 0, finished.stderr
    with open(finished.output / "predictions.csv") as handle:
        rows = sorted(csv.reader(handle))
    assert rows == sorted([name, str(2 * int(value))] for name, value in NUMBERS.items())

    overview = _overview(finished)
    assert overview["Status"] == "Succeeded"
    assert (overview["Mini-batches created"], overview["Mini-batches processed"], overview["Mini-batches failed"]) == ("3", "3", "0")
    assert overview["Result"] == "3 of 3 mini-batches succeeded"

    master = finished.log("sys/master_role.txt")
    assert "25 files" in master and "3 mini-batches" in master and "process001 started" in master
    assert f"job {finished.job} succeeded: 3 of 3 mini-batches succeeded" in master

    lines = _node_lines(finished)
    assert sorted(int(line["mini_batch"]) for line in lines) == [0, 1, 2]
    assert {line["result"] for line in lines} == {"succeeded"}
    assert sum(int(line["items_succeeded"]) for line in lines) == 25
    assert all(float(line["run_ms"]) <= float(line["duration_ms"]) for line in lines)

    outputs = [p.read_text() for p in sorted(finished.logs.glob("user/stdout/*/process*.stdout.txt"))]
    assert len(outputs) == 2
    assert all(text.count("init: model loaded") <= 1 for text in outputs)  # init() once per process
    stdout = "".join(outputs)
    assert "INFO good_score: mini-batch starts with" in stdout
    assert finished.log("user/error.txt") == ""
    assert not list(finished.logs.glob("user/error/*/*"))
    for name in ("node_resource_usage.csv", "processes_resource_usage.csv", "node_disk_usage.csv"):
        with open(finished.one(f"perf/*/{name}")) as handle:
            assert len(list(csv.reader(handle))) >= 3  # header, the start's sample and the end's
    assert "3/3" in finished.stderr  # the progress bar


def test_a_run_that_raises_is_retried_and_a_timeout_restarts_the_worker(run_job):
    files = {"a.txt": "fine", "b.txt": "once", "c.txt": "sleep 5", "d.txt": "fine"}
    finished = run_job("flaky_score.py", files, mini_batch_size=1, workers=2, timeout=1.5)
    assert finished.code == 0, finished.stderr
    with open(finished.output / "predictions.csv") as handle:
        assert sorted(csv.reader(handle)) == [["a.txt", "4"], ["b.txt", "4"], ["c.txt", "7"], ["d.txt", "4"]]
    overview = _overview(finished)
    assert overview["Mini-batch retries"] == "2" and overview["Mini-batches failed"] == "0"
    results = sorted(line["result"] for line in _node_lines(finished))
    assert results == ["failed", "succeeded", "succeeded", "succeeded", "succeeded", "timed"]  # "timed out"
    summary = finished.log("user/error.txt")
    assert "RuntimeError: transient failure on b.txt; will retry" in summary
    assert "TimeoutError: run() did not finish mini-batch 2 within --timeout 1.5 s" in summary
    traces = "".join(p.read_text() for p in finished.logs.glob("user/error/*/process*.txt"))
    assert 'raise RuntimeError(f"transient failure on {name}")' in traces  # the full stack
    assert "time.sleep" not in traces or "flaky_score.py" in traces
    assert re.search(r'File ".*flaky_score\.py", line \d+ in run', traces)  # where the timed-out run() was
    master = finished.log("sys/master_role.txt")
    assert master.count(" started (pid ") == 3  # two workers, and the one that replaced the timed-out worker
    assert "mini-batch 2 attempt 1 timed out" in master


def test_a_worker_that_dies_in_run_is_replaced_and_its_mini_batch_retried(run_job):
    finished = run_job("flaky_score.py", {"a.txt": "fine", "b.txt": "exit", "c.txt": "fine"}, mini_batch_size=1, workers=1)
    assert finished.code == 0, finished.stderr
    with open(finished.output / "predictions.csv") as handle:
        assert sorted(csv.reader(handle)) == [["a.txt", "4"], ["b.txt", "4"], ["c.txt", "4"]]
    assert "WorkerCrashed: the worker process exited with code 7 during run(); will retry" in finished.log("user/error.txt")
    assert sorted(line["result"] for line in _node_lines(finished)) == ["crashed", "succeeded", "succeeded", "succeeded"]


def test_failed_items_beyond_the_threshold_fail_the_job(run_job):
    files = {f"f{i:02d}.txt": ("raise" if i == 3 else "fine") for i in range(1, 21)}
    finished = run_job("flaky_score.py", files, mini_batch_size=5, workers=1, max_retries=1, error_threshold=4)
    assert finished.code == 1
    assert "error threshold exceeded: 5 failed items > --error_threshold 4" in finished.stderr
    overview = _overview(finished)
    assert overview["Status"] == "Failed"
    assert "logs/user/error.txt" in overview["Where to look"]
    summary = finished.log("user/error.txt")
    assert summary.count("ValueError: cannot score f03.txt") == 2  # the first attempt and its one retry
    assert "attempt 2/2" in summary


def test_failures_within_the_threshold_complete_the_job(run_job):
    files = {"a.txt": "raise", "b.txt": "fine", "c.txt": "short", "d.txt": "fine"}
    finished = run_job("flaky_score.py", files, mini_batch_size=2, workers=1, max_retries=0)
    assert finished.code == 0, finished.stderr
    overview = _overview(finished)
    assert overview["Mini-batches failed"] == "1"
    assert overview["Items failed"].startswith("3 ")  # a.txt and b.txt (raised), d.txt (not returned)
    assert (finished.output / "predictions.csv").read_text() == "c.txt,5\n"


def test_an_existing_output_is_refused_before_anything_runs(run_job, tmp_path):
    first = run_job("good_score.py", {"a.txt": "1"})
    assert first.code == 0
    before = (first.output / "predictions.csv").read_text()
    again = run_job("good_score.py", {"b.txt": "2"}, output=first.output)
    assert again.code == 2
    assert "output already exists" in again.stderr and "choose a new output location" in again.stderr
    assert (first.output / "predictions.csv").read_text() == before
    assert "b.txt" not in first.log("sys/master_role.txt")


def test_rows_without_their_file_get_its_key_and_a_short_result_is_written_as_returned(run_job):
    """keyless_score.py names no file: a list, a DataFrame, and one mini-batch a row short."""
    files = {"c.txt": "frame", "d.txt": "four", "e.txt": "drop", "f.txt": "six...", "sub/a.txt": "1", "sub/b.txt": "22"}
    finished = run_job("keyless_score.py", files, mini_batch_size=2, workers=1)
    assert finished.code == 0, finished.stderr
    with open(finished.output / "predictions.csv") as handle:
        rows = sorted(csv.reader(handle))
    assert rows == [["4"], ["c.txt", "5"], ["d.txt", "4"], ["sub/a.txt", "1"], ["sub/b.txt", "2"]]
    assert _overview(finished)["Items failed"].startswith("1 ")  # f.txt: no row came back for it
    master = finished.log("sys/master_role.txt")
    assert "mini-batch 1: run() returned 1 rows for 2 files and not every row names its input" in master


def test_an_init_that_hangs_fails_the_job_naming_init(run_job):
    finished = run_job("hanging_init_score.py", {"a.txt": "1", "b.txt": "2"}, workers=2, init_timeout=1)
    assert finished.code == 1
    message = "init() did not return within --init_timeout 1 s"
    assert message in finished.stderr
    overview = _overview(finished)
    assert overview["Status"] == "Failed" and message in overview["Result"]
    assert overview["Mini-batches processed"] == "0"
    assert message in finished.log("user/error.txt")
    stacks = "".join(p.read_text() for p in finished.logs.glob("user/error/*/process*.txt"))
    assert re.search(r'File ".*hanging_init_score\.py", line \d+ in init', stacks)  # where it hung
    assert "(init_timeout 1 s)" in finished.log("sys/master_role.txt")
