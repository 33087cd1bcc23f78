"""The query API under attack (#14, items 1, 4, 5, 11 and the low ones): every query runs under one
budget of time, memory and rows generated, from the first character compiled to the last row
fetched; the app in the path names a service or is refused; and nothing answers 500.

Scaled to this machine: a collector capped at 300 MB of DuckDB memory with a 4 s query timeout
stands for the 1 GB / 5 s one attacked; series of 30 million rows stand for 200 million (the cap
is 10 million, so both are refused the same way), 9 million for the aggregates under the cap."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import uuid

import httpx
import pytest
from collector_process import CollectorProcess
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MEMORY_LIMIT_MB = 300
TIMEOUT_S = 4


@pytest.fixture(scope="module")
def bounded(tmp_path_factory):
    """A collector with a small memory limit and a short query timeout, its compilers warm."""
    process = CollectorProcess(tmp_path_factory.mktemp("bounded-queries") / "data", env={
        "INSIGHTS_MEMORY_LIMIT": f"{MEMORY_LIMIT_MB}MB", "INSIGHTS_QUERY_TIMEOUT_S": str(TIMEOUT_S)}).start()
    service = process.create_service("budget")
    _wait_for_compilers(process, service["api_key"])
    process.service = service
    process.baseline_mb = _memory_mb(process)["VmRSS"]
    yield process
    process.stop()


def _wait_for_compilers(collector, key: str) -> None:
    deadline = time.monotonic() + 60
    while _post(collector, key, {"query": "print 1"})[0] != 200:
        assert time.monotonic() < deadline, "the collector's compilers did not start"


def _post(collector, key: str, body: dict, path: str = "/v1/apps/default/query") -> tuple[int, dict, float]:
    started = time.monotonic()
    with collector.client({"x-api-key": key}) as client:
        response = client.post(path, json=body, timeout=120)
    return response.status_code, response.json(), time.monotonic() - started


def _memory_mb(collector) -> dict[str, int]:
    """The collector process's resident memory now (VmRSS) and at its peak (VmHWM), in MB."""
    with open(f"/proc/{collector.process.pid}/status") as status:
        return {line.split(":")[0]: int(line.split()[1]) // 1024 for line in status
                if line.startswith(("VmRSS", "VmHWM"))}


class Ingesting:
    """Track requests in a loop while a test attacks the query side: each must still be answered
    200 (or 503 + Retry-After, which SDKs resend), and quickly."""

    def __init__(self, collector, service: dict):
        self.collector, self.ikey = collector, service["instrumentation_key"]
        self.statuses: list[int] = []
        self.latencies: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Ingesting:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=60)

    def _run(self) -> None:
        with httpx.Client(base_url=self.collector.url, timeout=60) as client:
            batch = 0
            while not self._stop.is_set():
                body = [{"name": "Microsoft.ApplicationInsights.Message", "time": "2026-12-06T00:00:00Z",
                         "iKey": self.ikey, "data": {"baseType": "MessageData", "baseData": {
                             "message": f"line {batch}-{i} " + "x" * 200}}} for i in range(500)]
                started = time.monotonic()
                response = client.post("/v2/track", json=body)
                self.latencies.append(time.monotonic() - started)
                self.statuses.append(response.status_code)
                batch += 1


# --- item 1: the rows a query generates and the memory it takes ---------------------------------

def test_a_series_past_the_cap_is_refused_before_a_row_is_generated(bounded):
    """`range x from 1 to 200000000 step 1 | count` with any service key held the collector at
    14 GB for 52 s: the series was built as one list, which neither the memory limit nor the
    timeout reached. Now it streams, and its length is checked before the first row."""
    for query in ("range x from 1 to 30000000 step 1 | count",
                  "range x from 1 to 30000000 step 1 | summarize dcount(x)",
                  "range x from 1 to 30000000 step 1 | order by x desc | take 1"):
        status, body, elapsed = _post(bounded, bounded.service["api_key"], {"query": query})
        assert status == 400, body
        assert body["error"]["innererror"]["code"] == "LimitError"
        assert "range would generate more than 10,000,000 rows" in body["error"]["message"]
        assert elapsed < TIMEOUT_S  # refused before a row is generated: generating would take longer
    assert _memory_mb(bounded)["VmHWM"] < bounded.baseline_mb + MEMORY_LIMIT_MB


@pytest.mark.parametrize("aggregate", [
    "count", "summarize dcount(x)", "order by x desc | take 3", "summarize make_list(x)", "summarize make_set(x)",
    "summarize sum(strlen(strrep(tostring(x), 100)))",
])
def test_work_over_generated_rows_keeps_to_the_memory_limit_and_the_deadline(bounded, aggregate):
    """Under the row cap, the same aggregates run under DuckDB's memory limit (a query gets half of
    it for sorts and hash tables, and spills) and stop at the deadline, while ingestion goes on."""
    with Ingesting(bounded, bounded.service) as ingesting:
        time.sleep(0.3)
        status, body, elapsed = _post(bounded, bounded.service["api_key"],
                                      {"query": f"range x from 1 to 9000000 step 1 | {aggregate}"})
        time.sleep(0.3)
    assert elapsed < TIMEOUT_S + 2, (elapsed, body)
    if status == 400:
        assert body["error"]["innererror"]["code"] == "LimitError"
        assert "INSIGHTS_MEMORY_LIMIT" in body["error"]["message"]
    elif status == 504:
        assert "time limit (4 s" in body["error"]["message"]
    else:
        assert status == 200, body
    assert _memory_mb(bounded)["VmHWM"] < bounded.baseline_mb + MEMORY_LIMIT_MB
    assert ingesting.statuses and set(ingesting.statuses) <= {200, 503}, ingesting.statuses
    assert 200 in ingesting.statuses
    assert max(ingesting.latencies) < 3, ingesting.latencies


# --- item 4: compilation under the same deadline ------------------------------------------------

def test_compilation_is_cancelled_at_the_deadline_and_ingestion_does_not_wait(bounded):
    """A 20,000-term `or` chain burned 70 s of CPU in the collector before its timeout started,
    and ingestion latency rose to seconds. Compilation now runs in a worker killed at the deadline.
    The query is wide, not deep (2,400 computed columns, under the 64 KB cap, take the translator about 15 s on one core):
    a deep `or` chain would end in 'nested too deeply' before the deadline on a fast machine."""
    chain = "traces | extend " + ",".join(f"a{i}=strlen(message)+{i}" for i in range(2400))
    with Ingesting(bounded, bounded.service) as ingesting:
        started = time.monotonic()
        results: list = []
        threads = [threading.Thread(target=lambda: results.append(
            _post(bounded, bounded.service["api_key"], {"query": chain}))) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.monotonic() - started
    for status, body, _ in results:
        assert status == 504, body
        assert body["error"]["code"] == "GatewayTimeout"
        assert "while compiling it" in body["error"]["message"] and "INSIGHTS_QUERY_TIMEOUT_S" in body["error"]["message"]
    assert elapsed < TIMEOUT_S + 2
    assert set(ingesting.statuses) <= {200, 503} and max(ingesting.latencies) < 3, ingesting.latencies


@pytest.fixture(scope="module")
def patient(tmp_path_factory):
    """The bounded collector's memory limit with a minute to compile: on a loaded machine the SQL grows
    more slowly than 4 s allow, and the deadline, not the memory cap, would stop it."""
    process = CollectorProcess(tmp_path_factory.mktemp("patient-queries") / "data", env={
        "INSIGHTS_MEMORY_LIMIT": f"{MEMORY_LIMIT_MB}MB", "INSIGHTS_QUERY_TIMEOUT_S": "60"}).start()
    process.service = process.create_service("budget")
    _wait_for_compilers(process, process.service["api_key"])
    process.baseline_mb = _memory_mb(process)["VmRSS"]
    yield process
    process.stop()


def test_a_translation_that_would_take_the_machine_is_stopped_by_the_compile_memory_cap(patient):
    """Eight nested `tostring` calls made the translator's SQL grow to gigabytes inside the collector."""
    status, body, elapsed = _post(patient, patient.service["api_key"],
                                  {"query": "print x = " + "tostring(" * 8 + "1" + ")" * 8})
    assert status == 400, body
    assert "compiling the query needs more memory than it is allowed" in body["error"]["message"]
    assert _memory_mb(patient)["VmHWM"] < patient.baseline_mb + MEMORY_LIMIT_MB
    assert _post(patient, patient.service["api_key"], {"query": "print x = tostring(1)"})[0] == 200


# --- item 5: one deadline for a batch -----------------------------------------------------------

def test_a_batch_shares_one_deadline(bounded):
    """`/v1/$batch` ran up to 100 queries each with the full timeout; now they share one."""
    slow = "range x from 1 to 9000000 step 1 | summarize sum(strlen(strrep(tostring(x), 100)))"
    batch = {"requests": [{"id": str(i), "workspace": "default", "body": {"query": slow}} for i in range(5)]}
    status, body, elapsed = _post(bounded, bounded.service["api_key"], batch, "/v1/$batch")
    assert status == 200
    statuses = [r["status"] for r in body["responses"]]
    assert set(statuses) <= {200, 504} and statuses.count(504) >= 4, statuses  # one may finish in time
    assert all("time limit" in r["body"]["error"]["message"] for r in body["responses"] if r["status"] == 504)
    assert elapsed < TIMEOUT_S + 2


# --- low: bad text and timespans are 400s, not 500s ---------------------------------------------

@pytest.mark.parametrize(("query", "words"), [
    ("traces" + " | where severityLevel > 0" * 500, "more than 200 operators"),
    ("print x = " + "(" * 3000 + "1" + ")" * 3000, "nests brackets more than 32 deep"),
    ("traces | where " + "(" * 3000 + "severityLevel > 0" + ")" * 3000, "nests brackets more than 32 deep"),
    ("print x = '" + "a" * 70_000 + "'", "characters long; the limit is 65,536"),
])
def test_a_text_too_long_or_deep_is_a_400_naming_the_limit(app_collector, query, words):
    with app_collector.admin as admin:
        response = admin.post("/v1/apps/default/query", json={"query": query})
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "BadArgumentError" and error["innererror"]["code"] == "LimitError"
    assert words in error["message"]


@pytest.mark.parametrize("timespan", ["P3000Y", "9999-12-31/P1D", "0001-01-01/-P1D", "0001-01-01T00:00:00+01:00/P1D"])
def test_a_timespan_outside_the_calendar_is_a_400(app_collector, timespan):
    with app_collector.admin as admin:
        response = admin.post("/v1/apps/default/query", json={"query": "traces | count", "timespan": timespan})
    assert response.status_code == 400, response.text
    assert "reaches outside the years 1 to 9999" in response.json()["error"]["message"]


# --- item 11: the app in the path ---------------------------------------------------------------

@pytest.fixture(scope="module")
def two_services(app_collector):
    """Two services with one trace each, sent as an SDK sends it, whose message names its service."""
    services = [app_collector.create_service(prefix) for prefix in ("qapp-one", "qapp-two")]
    for service in services:
        envelope = {"name": "Microsoft.ApplicationInsights.Message", "time": "2026-12-01T00:00:00Z",
                    "iKey": service["instrumentation_key"],
                    "data": {"baseType": "MessageData", "baseData": {"message": f"of {service['name']}"}}}
        assert app_collector.http.post("/v2/track", json=[envelope]).json()["itemsAccepted"] == 1
    return services


def _messages(collector, key: str, path: str, **body) -> tuple[int, list[str] | dict]:
    with collector.client({"x-api-key": key}) as client:
        response = client.post(path, json={"query": "traces | where message startswith 'of qapp-' | project message", **body})
    payload = response.json()
    if response.status_code != 200:
        return response.status_code, payload
    return 200, sorted(row[0] for row in payload["tables"][0]["rows"])


def test_the_admin_key_reads_the_app_the_path_names(app_collector, two_services):
    one, two = two_services
    admin = app_collector.admin_key
    with app_collector.admin as client:  # the appId a row carries is its service's instrumentation key
        rows = client.post("/v1/apps/default/query", json={"query": f"traces | where message == 'of {one['name']}' | project appId"})
    assert rows.json()["tables"][0]["rows"] == [[one["instrumentation_key"]]]
    for app in (one["name"], one["instrumentation_key"], one["instrumentation_key"].upper()):
        assert _messages(app_collector, admin, f"/v1/apps/{app}/query") == (200, [f"of {one['name']}"])
    resource = f"/v1/subscriptions/s/resourceGroups/g/providers/microsoft.insights/components/{two['name']}/query"
    assert _messages(app_collector, admin, resource) == (200, [f"of {two['name']}"])
    status, everything = _messages(app_collector, admin, "/v1/apps/default/query")
    assert status == 200 and {f"of {one['name']}", f"of {two['name']}"} <= set(everything)


@pytest.mark.parametrize("app", ["nosuch-app", str(uuid.uuid4()), "all"])
def test_an_unknown_app_is_a_404_for_any_key(app_collector, two_services, app):
    """It used to answer every service's rows to the admin key, and the caller's own to a service key."""
    for key in (app_collector.admin_key, two_services[0]["api_key"]):
        status, body = _messages(app_collector, key, f"/v1/apps/{app}/query")
        assert status == 404, body
        assert body["error"]["code"] == "PathNotFoundError" and app in body["error"]["message"]
    with app_collector.client({"x-api-key": app_collector.admin_key}) as client:
        get = client.get(f"/v1/apps/{app}/query", params={"query": "traces | count"})
    assert get.status_code == 404


def test_a_service_key_naming_another_app_is_a_403(app_collector, two_services):
    """It used to get its own rows with a 200."""
    one, two = two_services
    for app in (two["name"], two["instrumentation_key"]):
        status, body = _messages(app_collector, one["api_key"], f"/v1/apps/{app}/query")
        assert status == 403 and body["error"]["code"] == "InsufficientAccessError", body
    assert _messages(app_collector, one["api_key"], "/v1/apps/default/query", service=two["name"])[0] == 403
    assert _messages(app_collector, one["api_key"], f"/v1/workspaces/{two['name']}/query")[0] == 403
    for app in ("default", one["name"], one["instrumentation_key"]):
        assert _messages(app_collector, one["api_key"], f"/v1/apps/{app}/query") == (200, [f"of {one['name']}"])


def test_the_service_field_must_name_a_service(app_collector, two_services):
    one, two = two_services
    admin = app_collector.admin_key
    assert _messages(app_collector, admin, "/v1/apps/default/query", service=one["name"]) == (200, [f"of {one['name']}"])
    status, body = _messages(app_collector, admin, "/v1/apps/default/query", service="typo")
    assert status == 404 and "no service named 'typo'" in body["error"]["message"]
    status, body = _messages(app_collector, admin, f"/v1/apps/{one['name']}/query", service=two["name"])
    assert status == 400 and "name one" in body["error"]["message"]


def test_a_workspace_is_the_whole_collector_unless_it_names_a_service(app_collector, two_services):
    """LogsQueryClient users pass whatever workspace id they hold: that keeps reading the caller's
    scope, as before; a workspace id that is a service's name narrows to it as an app does."""
    one, two = two_services
    status, everything = _messages(app_collector, app_collector.admin_key, "/v1/workspaces/any-workspace-id/query")
    assert status == 200 and {f"of {one['name']}", f"of {two['name']}"} <= set(everything)
    assert _messages(app_collector, app_collector.admin_key, f"/v1/workspaces/{two['name']}/query") == \
        (200, [f"of {two['name']}"])
    assert _messages(app_collector, one["api_key"], "/v1/workspaces/any-workspace-id/query") == \
        (200, [f"of {one['name']}"])


def test_the_cli_refuses_an_unknown_service(collector):
    """`insights query --service typo` answered 0 rows and exit 0."""
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key}
    result = subprocess.run([sys.executable, "-m", "collector", "query", "--service", "typo", "traces | count"],
                            env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "no service named 'typo'" in result.stdout + result.stderr


# --- the fuzz test ------------------------------------------------------------------------------

def _nasty():
    from kql.test_generated import QUERIES  # the engine's own generator of pipelines and noise

    deep = st.integers(1, 4000).map(lambda n: "print x = " + "(" * n + "1" + ")" * n)
    chained = st.integers(1, 600).map(lambda n: "traces" + " | where severityLevel > 0" * n)
    ranges = st.tuples(st.integers(-10**12, 10**12), st.integers(-10**12, 10**12), st.integers(-10**6, 10**6)).map(
        lambda t: f"range x from {t[0]} to {t[1]} step {t[2]} | summarize count(), dcount(x)")
    repeats = st.tuples(st.text(max_size=4), st.integers(-5, 10**9)).map(
        lambda t: "print n = strlen(strrep(" + json.dumps(t[0]) + f", {t[1]}))")
    return st.one_of(QUERIES, deep, chained, ranges, repeats)


# Mostly no timespan and the default app, so that most examples reach the compiler and DuckDB.
TIMESPANS = st.one_of(st.none(), st.none(), st.none(), st.text(max_size=20), st.sampled_from(
    ["PT1H", "P7D", "P3000Y", "9999-12-31/P1D", "P1Y/2026-01-01", "-P1D", "PT0S", "2026-01-01/2025-01-01"]))
APPS = st.sampled_from(["default"] * 6 + ["nosuch", "all"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=_nasty(), timespan=TIMESPANS, app=APPS)
def test_no_query_answers_a_5xx_but_a_504_for_time(app_collector, query, timespan, app):
    with app_collector.admin as admin:
        response = admin.post(f"/v1/apps/{app}/query", json={"query": query, "timespan": timespan})
    assert response.status_code < 500 or response.status_code == 504, response.text
    if response.status_code >= 400:
        error = response.json()["error"]
        assert error["code"] and error["message"]
        if response.status_code == 504:
            assert "time limit" in error["message"]
