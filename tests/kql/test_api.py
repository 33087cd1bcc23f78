"""The query API against a real collector process, driven by azure-monitor-query's LogsQueryClient.

Both ways a client authenticates over plain http: a bearer token with `enforce_https=False` on the
call, and an `x-api-key` authentication policy. Plus the raw HTTP shapes the client relies on.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta

import httpx
import orjson
import pytest
from azure.core.credentials import AccessToken, AzureKeyCredential
from azure.core.pipeline.policies import AzureKeyCredentialPolicy
from azure.monitor.query import LogsBatchQuery, LogsQueryClient, LogsQueryPartialResult, LogsQueryResult, LogsQueryStatus

from .server import serve_router

pytest.importorskip("pandas")
import pandas as pd  # noqa: E402


class KeyAsToken:
    """A TokenCredential that hands the collector key over as the bearer token."""

    def __init__(self, key: str):
        self.key = key

    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken(self.key, int(time.time()) + 3600)

    def get_token_info(self, *scopes, options=None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self.key, int(time.time()) + 3600)


def _rows(service: str, now: float) -> list[bytes]:
    stamp = lambda seconds_ago: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now - seconds_ago))  # noqa: E731
    lines = [
        {"itemType": "trace", "timestamp": stamp(60), "message": "STDOUT",
         "customDimensions": {"Contents": {"input": [1, 2]}, "Request Id": "r1"}, "severityLevel": 1},
        {"itemType": "trace", "timestamp": stamp(7200), "message": "old", "severityLevel": 1},
        {"itemType": "request", "timestamp": stamp(30), "name": "POST /score", "success": True,
         "resultCode": "200", "duration": 12.5, "operation_Id": "op1", "id": "q1"},
        {"itemType": "request", "timestamp": stamp(20), "name": "POST /score", "success": False,
         "resultCode": "500", "duration": 80.0, "operation_Id": "op2", "id": "q2"},
        {"itemType": "exception", "timestamp": stamp(20), "type": "ValueError", "message": f"of {service}",
         "operation_Id": "op2", "problemId": "p1"},
    ]
    return [orjson.dumps(line) for line in lines]


@dataclass
class Target:
    """A collector answering queries: its URL, admin key and two services with the same rows."""

    url: str
    admin_key: str
    mine: dict
    theirs: dict


@pytest.fixture(scope="module", params=["in_process", "collector"])
def target(request):
    """The router in a small in-process app (always available), and the real collector process."""
    now = time.time()
    if request.param == "in_process":
        with serve_router(now, _rows) as served:
            yield served
        return
    collector = request.getfixturevalue("collector")
    mine = collector.create_service("kqlmine")
    theirs = collector.create_service("kqltheirs")
    for service in (mine, theirs):
        assert collector.import_rows(service["name"], _rows(service["name"], now))["imported"] == 5
    yield Target(collector.url, collector.admin_key, mine, theirs)


@pytest.fixture
def services(target):
    return target.mine, target.theirs


def _bearer_client(target, key: str) -> LogsQueryClient:
    return LogsQueryClient(KeyAsToken(key), endpoint=target.url)


def _key_client(target, key: str) -> LogsQueryClient:
    policy = AzureKeyCredentialPolicy(AzureKeyCredential(key), "x-api-key")
    return LogsQueryClient(KeyAsToken(key), endpoint=target.url, authentication_policy=policy)


def test_query_workspace_with_bearer_token_gives_dataframe(target, services):
    mine, _ = services
    client = _bearer_client(target, mine["api_key"])
    result = client.query_workspace(
        "any", "traces | where customDimensions contains 'input' | project timestamp, message, customDimensions, severityLevel",
        timespan=timedelta(hours=1), enforce_https=False,
    )
    assert isinstance(result, LogsQueryResult) and result.status == LogsQueryStatus.SUCCESS
    frame = pd.DataFrame(data=result.tables[0].rows, columns=result.tables[0].columns)
    assert list(frame.columns) == ["timestamp", "message", "customDimensions", "severityLevel"]
    assert frame["message"].tolist() == ["STDOUT"]
    assert frame["timestamp"][0].tzinfo is not None  # parsed as a datetime by the client
    assert orjson.loads(frame["customDimensions"][0])["Request Id"] == "r1"
    assert frame["severityLevel"].tolist() == [1]


def test_x_api_key_policy_and_service_scoping(target, services):
    mine, theirs = services
    client = _key_client(target, mine["api_key"])
    result = client.query_workspace("ws", "exceptions | project message", timespan=None)
    assert [row["message"] for row in result.tables[0].rows] == [f"of {mine['name']}"]
    summary = client.query_workspace(
        "ws", "requests | summarize count(), avg(duration), percentiles(duration, 50, 95) by name",
        timespan=timedelta(hours=1))
    table = summary.tables[0]
    assert table.columns == ["name", "count_", "avg_duration", "percentile_duration_50", "percentile_duration_95"]
    assert [list(r) for r in table.rows] == [["POST /score", 2, 46.25, 12.5, 80.0]]


def test_timespan_restricts_timestamp(target, services):
    mine, _ = services
    client = _key_client(target, mine["api_key"])
    hour = client.query_workspace("ws", "traces | count", timespan=timedelta(hours=1))
    day = client.query_workspace("ws", "traces | count", timespan=timedelta(days=1))
    assert hour.tables[0].rows[0][0] == 1 and day.tables[0].rows[0][0] == 2


def test_admin_sees_all_and_can_scope_by_workspace_id(target, services):
    mine, theirs = services
    client = _key_client(target, target.admin_key)
    scoped = client.query_workspace(theirs["name"], "exceptions | project message", timespan=None)
    assert [r["message"] for r in scoped.tables[0].rows] == [f"of {theirs['name']}"]
    everything = client.query_workspace("all", "exceptions | where message startswith 'of kql' | count",
                                        timespan=None)
    assert everything.tables[0].rows[0][0] >= 2


def test_query_batch(target, services):
    mine, _ = services
    client = _bearer_client(target, mine["api_key"])
    requests = [
        LogsBatchQuery("ws", "traces | take 1", timespan=timedelta(hours=1)),
        LogsBatchQuery("ws", "requests | count", timespan=None),
        LogsBatchQuery("ws", "requests | where nosuch == 1", timespan=None),
    ]
    first, second, third = client.query_batch(requests, enforce_https=False)
    assert first.status == LogsQueryStatus.SUCCESS and len(first.tables[0].rows) == 1
    assert second.tables[0].rows[0][0] == 2
    assert third.__class__.__name__ == "LogsQueryError"
    assert "nosuch" in third.message


def test_bad_query_is_a_400_naming_problem_and_position(target, services):
    mine, _ = services
    client = _bearer_client(target, mine["api_key"])
    from azure.core.exceptions import HttpResponseError

    with pytest.raises(HttpResponseError) as caught:
        client.query_workspace("ws", "requests | where nosuch > 1", timespan=None, enforce_https=False)
    assert caught.value.status_code == 400
    assert "unknown column 'nosuch'" in str(caught.value)


def test_render_and_statistics_reach_the_client(target, services):
    mine, _ = services
    client = _key_client(target, mine["api_key"])
    result = client.query_workspace(
        "ws", "requests | summarize count() by bin(timestamp, 1m) | render timechart with (title='t')",
        timespan=None, include_statistics=True, include_visualization=True)
    assert result.visualization["visualization"] == "timechart"
    assert result.visualization["title"] == "t"
    assert "executionTime" in result.statistics["query"]


def test_truncation_is_a_partial_result(target, services):
    """Above the row cap the client gets a LogsQueryPartialResult, as from Log Analytics."""
    mine, _ = services
    client = _key_client(target, mine["api_key"])
    result = client.query_workspace("ws", "range x from 1 to 600000 step 1", timespan=None)
    assert isinstance(result, LogsQueryPartialResult)
    assert len(result.partial_data[0].rows) == 500_000


def test_raw_http_shapes(target, services):
    mine, _ = services
    key = {"x-api-key": mine["api_key"]}
    get = httpx.get(f"{target.url}/v1/apps/default/query", params={"query": "print n = 1, s = 'a', t = 1h, d = datetime(2026-01-02)"},
                    headers=key)
    assert get.status_code == 200
    table = get.json()["tables"][0]
    assert table["name"] == "PrimaryResult"
    assert table["columns"] == [{"name": "n", "type": "long"}, {"name": "s", "type": "string"},
                                {"name": "t", "type": "timespan"}, {"name": "d", "type": "datetime"}]
    assert table["rows"] == [[1, "a", "01:00:00", "2026-01-02T00:00:00Z"]]
    via_param = httpx.get(f"{target.url}/v1/apps/default/query",
                          params={"query": "print 1", "api_key": mine["api_key"]})
    assert via_param.status_code == 200
    bad = httpx.post(f"{target.url}/v1/apps/default/query", json={"query": "traces | where message == 'abc"},
                     headers=key)
    assert bad.status_code == 400
    error = bad.json()["error"]
    assert error["code"] == "BadArgumentError"
    assert error["innererror"]["code"] == "SyntaxError"
    assert (error["innererror"]["line"], error["innererror"]["pos"]) == (1, 27)
    assert "unterminated string" in error["innererror"]["message"]
    not_json = httpx.post(f"{target.url}/v1/apps/default/query", content=b"{", headers=key)
    assert not_json.status_code == 400
    foreign = httpx.post(f"{target.url}/v1/apps/default/query", json={"query": "traces", "service": services[1]["name"]},
                         headers=key)
    assert foreign.status_code == 403
    unknown = httpx.post(f"{target.url}/v1/apps/default/query", json={"query": "traces", "service": "other"},
                         headers=key)
    assert unknown.status_code == 404
    no_key = httpx.post(f"{target.url}/v1/apps/default/query", json={"query": "traces"})
    assert no_key.status_code == 401
