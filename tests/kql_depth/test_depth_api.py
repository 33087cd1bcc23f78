"""Issue 18's operators through a real collector process: azure-monitor-query's LogsQueryClient and
the raw query API, each as one service's key (the answers must hold that service's rows only).

What the case files (tests/kql/cases/) check against a small store, this checks end to end: the
series UDF registered on the collector's own store connection, the two-step plugins asking the
data as the caller (another service's bag keys never become columns), and the 400s naming the
problem.
"""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.policies import AzureKeyCredentialPolicy
from azure.monitor.query import LogsQueryClient, LogsQueryStatus

from tests.kql.test_api import KeyAsToken


def _requests(service: str, start: float) -> list[bytes]:
    """Ten requests, one a minute from *start*, every fourth one failed; the 7th is slow."""
    rows = []
    for i in range(10):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * i))
        rows.append({"itemType": "request", "timestamp": stamp, "name": "POST /score", "id": f"{service}-{i}",
                     "success": i % 4 != 3, "resultCode": "500" if i % 4 == 3 else "200",
                     "duration": 200.0 if i == 6 else 10.0, "operation_Id": f"op{i}",
                     "customDimensions": {f"key_of_{service}": "v", "model": "m1"}})
    return [orjson.dumps(r) for r in rows]


@pytest.fixture(scope="module")
def setup(collector):
    start = (int(time.time()) // 60 - 30) * 60  # whole minutes, half an hour ago
    mine = collector.create_service("depth")
    theirs = collector.create_service("depthx")
    for service in (mine, theirs):
        assert collector.import_rows(service["name"], _requests(service["name"], start))["imported"] == 10
    policy = AzureKeyCredentialPolicy(AzureKeyCredential(mine["api_key"]), "x-api-key")
    client = LogsQueryClient(KeyAsToken(mine["api_key"]), endpoint=collector.url, authentication_policy=policy)
    return collector, mine, client, start


def _table(client: LogsQueryClient, kql: str) -> tuple[list[str], list[list]]:
    result = client.query_workspace("ws", kql, timespan=timedelta(hours=2))
    assert result.status == LogsQueryStatus.SUCCESS
    return list(result.tables[0].columns), [list(r) for r in result.tables[0].rows]


def test_make_series_zero_fills_and_series_stats_finds_the_peak(setup):
    _, _, client, start = setup
    origin = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start))
    columns, rows = _table(client, f"requests | make-series failures = countif(success == false) default=0 "
                                   f"on timestamp from datetime({origin}) to datetime({origin}) + 12m step 1m "
                                   "| extend series_stats(failures) | project failures, series_stats_failures_max_idx")
    assert columns == ["failures", "series_stats_failures_max_idx"]
    assert orjson.loads(rows[0][0]) == [0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0]  # this service's rows only
    assert rows[0][1] == 3


def test_series_decompose_anomalies_runs_in_the_collector(setup):
    _, _, client, start = setup
    origin = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start))
    _, rows = _table(client, f"requests | make-series d = avg(duration) on timestamp from datetime({origin}) "
                             "to datetime({origin}) + 10m step 1m "
                             "| project (flag, score, baseline) = series_decompose_anomalies(d, 1.5, 0, 'avg')"
                             .replace("{origin}", origin))
    assert orjson.loads(rows[0][0]) == [0, 0, 0, 0, 0, 0, 1, 0, 0, 0]


def test_window_functions_and_top_nested_over_raw_http(setup):
    collector, mine, _, _ = setup
    headers = {"x-api-key": mine["api_key"]}
    with collector.client(headers) as http:
        gaps = http.post("/v1/apps/default/query", json={
            "query": "requests | order by timestamp asc | extend gap = timestamp - prev(timestamp), "
                     "n = row_number(), total = row_cumsum(duration) | take 3 | project gap, n, total"})
        nested = http.post("/v1/apps/default/query", json={
            "query": "requests | top-nested 1 of name by count(), top-nested 2 of resultCode by count()"})
    assert gaps.status_code == 200, gaps.text
    assert gaps.json()["tables"][0]["rows"] == [[None, 1, 10.0], ["00:01:00", 2, 20.0], ["00:01:00", 3, 30.0]]
    assert nested.json()["tables"][0]["rows"] == [["POST /score", 10, "200", 8], ["POST /score", 10, "500", 2]]


def test_bag_unpack_sees_only_the_callers_keys(setup):
    _, mine, client, _ = setup
    columns, rows = _table(client, "requests | take 1 | evaluate bag_unpack(customDimensions) "
                                   "| project-away timestamp")
    assert f"key_of_{mine['name']}" in columns and "model" in columns
    assert not [c for c in columns if c.startswith("key_of_depthx")]


def test_mv_apply_pivot_and_hash_through_the_client(setup):
    _, _, client, _ = setup
    _, pivot = _table(client, "requests | project name, resultCode | evaluate pivot(resultCode)")
    assert pivot == [["POST /score", 8, 2]]
    _, applied = _table(client, "print a = dynamic([5, 1, 3]) | mv-apply x = a to typeof(long) on (top 1 by x) "
                                "| project x, h = hash('World', 100)")
    assert applied == [[5, 51]]


def test_the_leniency_fixes_answer_400s_that_say_what(setup):
    _, _, client, _ = setup
    for kql, expected in (("requests | project Name", "did you mean 'name'?"),
                          ("requests | summarize count() by customDimensions.model", "is of type dynamic"),
                          ("requests | where duration > 'x'", "cannot compare real ('duration') with string")):
        with pytest.raises(HttpResponseError) as caught:
            client.query_workspace("ws", kql, timespan=None)
        assert caught.value.status_code == 400 and expected in str(caught.value), kql
