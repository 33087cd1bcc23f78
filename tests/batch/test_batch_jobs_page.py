"""The dashboard's Jobs page over a real job's telemetry (streamlit's AppTest, the real collector)."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

from dashboard import collector_api, time_range
from dashboard.collector_api import Link
from dashboard.selection import Selection

PAGE = str(Path(__file__).resolve().parents[2] / "dashboard" / "views" / "jobs.py")


def _page(collector, service: str) -> AppTest:
    collector_api.query.clear()
    at = AppTest.from_file(PAGE, default_timeout=30)
    at.session_state["_selection"] = Selection(Link(collector.url, collector.admin_key), service, time_range.DEFAULT, None)
    return at.run()


def test_the_jobs_page_shows_progress_failures_and_output(collector, telemetry_job):
    at = _page(collector, telemetry_job["service"])
    assert not at.exception, at.exception
    jobs = at.dataframe[0].value.set_index("job")
    row = jobs.loc[telemetry_job["name"]]
    assert row["status"] == "Succeeded"
    assert (row["mini_batches_created"], row["mini_batches_processed"], row["mini_batches_failed"]) == (5, 5, 1)
    assert "5 of 5 mini-batches processed" in at.get("progress")[0].proto.text
    failures = at.dataframe[1].value
    assert sorted(failures["outcome"]) == ["failed", "failed", "failed", "timed out"]
    assert any("cannot score c.txt" in e.label for e in at.expander)
    assert any("flaky_score.py" in c.value for c in at.code)
    logs = at.dataframe[2].value
    assert logs["Contents"].str.startswith("init in").any()


def test_the_jobs_page_shows_the_calls_a_job_made(collector, calling_job):
    at = _page(collector, calling_job["service"])
    assert not at.exception, at.exception
    calls = at.dataframe[-1].value.set_index("name")
    assert calls.loc["GET /score/a.txt", "target"] == f"127.0.0.1:{calling_job['port']}"
    assert sorted(calls["calls"]) == [1, 1, 1, 1] and not calls["failed"].any()


def test_a_service_without_jobs_says_how_to_run_one(collector):
    service = collector.create_service("nojobs")["name"]
    at = _page(collector, service)
    assert not at.exception
    assert "No batch jobs" in at.info[0].value
    assert "insights batch run" in at.markdown[0].value
