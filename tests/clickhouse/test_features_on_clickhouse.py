"""The dashboard and batch jobs, unchanged, on a collector whose store is ClickHouse (the stand-in,
tests/clickhouse/chdb_server.py: no ClickHouse server can run here).

One collector process started with INSIGHTS_STORE=clickhouse://..., one service fed three real ways:
the import API (bench-shaped traffic: requests, dependencies, exceptions, traces with the scoring
input), the opencensus SDK over /v2/track (a trace with input and output, an exception), and a real
`insights batch run --service` (its attempts, prints, calls and counters, and its workers' console
output). Then the user's views of it: the batch commands and `insights logs`, and the dashboard
(started as `insights up` starts it) in Debian's Chromium, page by page, with no error box.

The Live metrics, Application map, Rollout, Model monitoring and Alerts pages are walked on ClickHouse
in test_pages_on_clickhouse.py, each with the data it needs.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest
from collector_process import CollectorProcess, free_port
from downstream import downstream_service
from opencensus.ext.azure.log_exporter import AzureLogHandler
from store_helpers import eventually, migrated_url

sys.path[:0] = [str(Path(__file__).parents[1] / "batch"), str(Path(__file__).parents[1] / "dashboard")]
from batch_jobs import SCRIPTS, batch_command, make_input  # noqa: E402
from dashboard_harness import TIMEOUT_MS, VIEWPORT, chromium, playwright_api, sign_in  # noqa: E402
from dashboard_seed import SEEDED_REQUESTS, rows  # noqa: E402

from dashboard.launcher import run_dashboard, stop_dashboard, url, wait_ready  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SDK_MESSAGE = "scored 2 rows for the sdk"
JOB_ATTEMPTS = 2  # calls_score.py over three files in mini-batches of two


@pytest.fixture(scope="module")
def stack(clickhouse_server, tmp_path_factory):
    """The collector on ClickHouse with its one service fed (see the module doc), the batch job's
    result, and the dashboard on the collector."""
    root = tmp_path_factory.mktemp("ch-features")
    collector = CollectorProcess(root / "data", env={"INSIGHTS_STORE": migrated_url(clickhouse_server, "features"),
                                                     "INSIGHTS_STORE_PASSWORD": clickhouse_server.password}).start(timeout=90)
    log = open(root / "dashboard.log", "wb")
    port = free_port()
    dashboard = run_dashboard(collector.url, port, log_file=log)
    try:
        created = collector.create_service("chdash")
        service, lines = created["name"], list(rows(SEEDED_REQUESTS, minutes=55))
        assert collector.import_rows(service, lines)["imported"] == len(lines)
        items = [orjson.loads(line) for line in lines]
        _send_with_the_sdk(collector, created, sum(r["itemType"] == "exception" for r in items))
        job = _run_job(collector, service, root)
        assert wait_ready(port, dashboard), (root / "dashboard.log").read_text()
        yield {"collector": collector, "service": service, "items": items, "job": job, "address": url(port)}
    finally:
        stop_dashboard(dashboard)
        log.close()
        collector.stop()



def _count(collector, service: str, kql: str) -> int:
    return collector.query(f"{kql} | count", service)[0]["Count"]


def _send_with_the_sdk(collector, created: dict, seeded_exceptions: int) -> None:
    """A trace carrying a scoring input and output, and an exception, through opencensus (the SDK
    azureml-inference-server-http's users log with), then wait until both are queryable."""
    service = created["name"]
    logger = logging.getLogger(f"chdash-{service}")
    handler = AzureLogHandler(connection_string=created["connection_string"], enable_local_storage=False,
                              export_interval=0.2, enable_stats_metrics=False)
    logger.addHandler(handler)
    logger.warning(SDK_MESSAGE, extra={"custom_dimensions": {"input": {"data": [[5.1, 3.5]]}, "output": [1]}})
    try:
        raise KeyError("data")
    except KeyError:
        logger.exception("run() failed")
    handler.flush()
    logger.removeHandler(handler)
    assert eventually(lambda: _count(collector, service, f'traces | where message == "{SDK_MESSAGE}"') == 1
                       and _count(collector, service, "exceptions") == seeded_exceptions + 1)


def _run_job(collector, service: str, root: Path) -> dict:
    """`insights batch run --service` over three files calling a local HTTP service."""
    env = {"INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "XDG_CACHE_HOME": str(root / "cache")}
    name = f"chjob-{root.name[-12:]}"
    with downstream_service() as (address, _):
        done = batch_command("run", "--entry_script", str(SCRIPTS / "calls_score.py"), "--input",
                             str(make_input(root / "input", {"a.txt": "x", "b.txt": "x", "c.txt": "x"})),
                             "--output", str(root / "out"), "--service", service, "--mini_batch_size", "2",
                             "--workers", "1", "--resource_monitor_interval", "0", "--job_name", name,
                             env={**env, "BATCH_TEST_URL": address}, timeout=180)
    assert done.returncode == 0, done.stderr
    return {"name": name, "env": env}


def test_batch_job_rows_status_and_console_on_clickhouse(stack):
    collector, service, job = stack["collector"], stack["service"], stack["job"]
    where = f'where customDimensions.job == "{job["name"]}"'
    attempts = collector.query(f"requests | {where} | project success, operation_Id", service)
    assert len(attempts) == JOB_ATTEMPTS and all(a["success"] for a in attempts)
    calls = collector.query(f"dependencies | {where} | order by timestamp asc | project name", service)
    assert [c["name"] for c in calls] == ["GET /init", "GET /score/a.txt", "GET /score/b.txt", "GET /score/c.txt"]
    printed = collector.query(f"traces | {where} | project Contents=tostring(customDimensions.Contents)", service)
    assert "scored c.txt" in {p["Contents"].strip() for p in printed}
    status = batch_command("status", job["name"], env=job["env"])  # arg_max over its counters, on ClickHouse
    assert status.returncode == 0, status.stderr
    assert "Succeeded" in status.stdout and "2 of 2 processed, 0 failed" in status.stdout
    logs = insights("logs", service, "--lines", "200", env=job["env"])
    assert logs.returncode == 0, logs.stderr
    assert f"[insights] batch job {job['name']} succeeded" in logs.stdout
    assert "scored c.txt" in logs.stdout and "init: called the model store" in logs.stdout


def insights(*args: str, env: dict) -> subprocess.CompletedProcess:
    """The `insights` command line itself (this tree's), as a user runs `insights logs`."""
    return subprocess.run([sys.executable, "-m", "insights", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def _metric(page, label: str):
    return page.get_by_test_id("stMetric").filter(has_text=label).first.get_by_test_id("stMetricValue")


def _open(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_text(title, exact=True).click()
    playwright_api().expect(page.get_by_test_id("stHeading").filter(has_text=title).first).to_be_visible(timeout=TIMEOUT_MS)


def _no_error_box(page, where: str) -> None:
    page.wait_for_timeout(300)  # a failing query's box arrives with the page's last elements
    assert page.get_by_test_id("stException").count() == 0, f"{where}: {page.get_by_test_id('stException').first.inner_text()}"
    assert page.get_by_test_id("stAlertContentError").count() == 0, f"{where}: {page.get_by_test_id('stAlertContentError').first.inner_text()}"


def test_dashboard_pages_in_chromium_on_clickhouse(stack):
    expect = playwright_api().expect
    collector, items = stack["collector"], stack["items"]
    seeded = [r for r in items if r["itemType"] == "request"]
    failed = sum(not r["success"] for r in seeded)
    exceptions = sum(r["itemType"] == "exception" for r in items) + 1  # and the SDK's
    dependencies = sum(r["itemType"] == "dependency" for r in items) + 4  # and the job's calls
    ARTIFACTS.mkdir(exist_ok=True)
    with chromium() as browser:
        page = browser.new_context(viewport=VIEWPORT).new_page()
        sign_in(page, stack["address"], collector.admin_key)

        expect(_metric(page, "Requests")).to_have_text(f"{SEEDED_REQUESTS + JOB_ATTEMPTS:,}", timeout=TIMEOUT_MS)
        expect(_metric(page, "Failed requests")).to_have_text(f"{failed:,}")
        expect(_metric(page, "Exceptions")).to_have_text(f"{exceptions:,}")
        expect(_metric(page, "Dependency calls")).to_have_text(f"{dependencies:,}")
        for title in ("Request rate", "Response time", "Failed requests by result code", "Exceptions by type"):
            expect(page.locator(".js-plotly-plot .gtitle", has_text=title)).to_have_count(1, timeout=TIMEOUT_MS)
        _no_error_box(page, "Overview")
        page.screenshot(path=str(ARTIFACTS / "clickhouse-overview.png"))

        _open(page, "Failures")
        expect(page.get_by_text("Top failing operations")).to_be_visible(timeout=TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot .barlayer path").first).to_be_visible(timeout=TIMEOUT_MS)
        sample = page.get_by_test_id("stExpander").filter(has_text="POST /score").first
        expect(sample).to_be_visible(timeout=TIMEOUT_MS)
        sample.locator("summary").click()
        expect(sample.get_by_text("customDimensions")).to_be_visible(timeout=TIMEOUT_MS)
        _no_error_box(page, "Failures")

        _open(page, "Performance")  # the duration histogram is a numeric bin() on ClickHouse
        expect(page.locator(".js-plotly-plot .gtitle", has_text="Duration distribution: All operations")).to_have_count(
            1, timeout=TIMEOUT_MS)
        expect(page.locator(".js-plotly-plot .barlayer path").first).to_be_visible(timeout=TIMEOUT_MS)
        _no_error_box(page, "Performance")

        _open(page, "Logs")
        editor = page.get_by_label("Query")
        editor.fill(f'traces | where message == "{SDK_MESSAGE}" | project message, output=tostring(customDimensions.output)')
        editor.press("Control+Enter")
        expect(page.get_by_test_id("stCaptionContainer").filter(has_text="1 rows")).to_be_visible(timeout=TIMEOUT_MS)
        _no_error_box(page, "Logs")
        page.screenshot(path=str(ARTIFACTS / "clickhouse-logs.png"))

        _open(page, "Console logs")
        expect(page.get_by_test_id("stCode").filter(has_text="scored c.txt")).to_be_visible(timeout=TIMEOUT_MS)
        _no_error_box(page, "Console logs")

        _open(page, "Jobs")  # arg_max over the job's counters on ClickHouse
        expect(page.get_by_text(f"{JOB_ATTEMPTS} of {JOB_ATTEMPTS} mini-batches processed")).to_be_visible(timeout=TIMEOUT_MS)
        expect(_metric(page, "Status")).to_have_text("Succeeded")
        _no_error_box(page, "Jobs")
        page.screenshot(path=str(ARTIFACTS / "clickhouse-jobs.png"))

        _open(page, "Services")
        expect(page.get_by_role("switch", name="enable_app_insights")).to_be_checked(timeout=TIMEOUT_MS)
        _no_error_box(page, "Services")
