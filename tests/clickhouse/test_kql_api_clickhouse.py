"""KQL through a real collector process whose store is ClickHouse (the stand-in server: chdb behind
ClickHouse's HTTP interface, driven by clickhouse-connect as in production): azure-monitor-query's
LogsQueryClient and the raw App Insights route get the same shapes as on DuckDB, a key sees only its
own service, and a query the clickhouse store cannot lower answers a clear 400."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import orjson
import pytest
from azure.core.credentials import AzureKeyCredential
from azure.core.pipeline.policies import AzureKeyCredentialPolicy
from azure.monitor.query import LogsQueryClient, LogsQueryStatus
from collector_process import CollectorProcess
from store_helpers import migrated_url

from tests.kql.test_api import KeyAsToken


def _requests(service: str, start: float) -> list[bytes]:
    """Ten requests, one a minute from *start*, every fourth one failed; the 7th is slow."""
    rows = []
    for i in range(10):
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start + 60 * i))
        rows.append({"itemType": "request", "timestamp": stamp, "name": "POST /score", "id": f"{service}-{i}",
                     "success": i % 4 != 3, "resultCode": "500" if i % 4 == 3 else "200",
                     "duration": 200.0 if i == 6 else 10.0, "operation_Id": f"op{i}",
                     "customDimensions": {"model": "m1", "owner": service}})
    return [orjson.dumps(r) for r in rows]


@pytest.fixture(scope="module")
def setup(clickhouse_server, tmp_path_factory):
    url = migrated_url(clickhouse_server, "kqlapi")
    collector = CollectorProcess(tmp_path_factory.mktemp("ch-kql") / "data",
                                 env={"INSIGHTS_STORE": url, "INSIGHTS_STORE_PASSWORD": clickhouse_server.password}
                                 ).start(timeout=60)
    start = (int(time.time()) // 60 - 30) * 60  # whole minutes, half an hour ago
    mine, theirs = collector.create_service("chq"), collector.create_service("chqx")
    for service in (mine, theirs):
        assert collector.import_rows(service["name"], _requests(service["name"], start))["imported"] == 10
    policy = AzureKeyCredentialPolicy(AzureKeyCredential(mine["api_key"]), "x-api-key")
    client = LogsQueryClient(KeyAsToken(mine["api_key"]), endpoint=collector.url, authentication_policy=policy)
    yield collector, mine, client, start
    collector.stop()


def test_logs_query_client_reads_its_service_from_clickhouse(setup):
    _, mine, client, start = setup
    result = client.query_workspace(
        "ws", "requests | summarize n = count(), failed = countif(success == false), p95 = percentile(duration, 95), "
              "owners = dcount(tostring(customDimensions.owner)) by bin(timestamp, 5m) | order by timestamp asc",
        timespan=timedelta(hours=2))
    assert result.status == LogsQueryStatus.SUCCESS
    table = result.tables[0]
    assert list(table.columns) == ["timestamp", "n", "failed", "p95", "owners"]
    rows = [list(r) for r in table.rows]
    assert sum(r[1] for r in rows) == 10 and sum(r[2] for r in rows) == 2  # only this key's service
    assert all(r[4] == 1 for r in rows)
    assert max(r[3] for r in rows) == 200.0
    assert rows[0][0].timestamp() % 300 == 0  # bin() floors to 5 minutes, as a UTC datetime


def test_raw_route_shapes_and_join_on_clickhouse(setup):
    collector, mine, _, _ = setup
    key = {"x-api-key": mine["api_key"]}
    answer = httpx.post(f"{collector.url}/v1/apps/default/query", headers=key, timeout=60, json={
        "query": "requests | where success == false | project id, operation_Id "
                 "| join kind=leftouter (requests | where duration > 100 | project operation_Id, slow = duration) "
                 "on operation_Id | project id, slow | order by id asc"})
    assert answer.status_code == 200, answer.text
    table = answer.json()["tables"][0]
    assert table["columns"] == [{"name": "id", "type": "string"}, {"name": "slow", "type": "real"}]
    assert table["rows"] == [[f"{mine['name']}-3", None], [f"{mine['name']}-7", None]]  # NULL, not 0.0


def test_a_query_the_clickhouse_store_cannot_lower_is_a_clear_400(setup):
    collector, mine, _, _ = setup
    answer = httpx.post(f"{collector.url}/v1/apps/default/query", headers={"x-api-key": mine["api_key"]},
                        json={"query": "print s = series_fir(dynamic([1, 2, 3]), dynamic([0.5, 0.5]))"}, timeout=60)
    assert answer.status_code == 400
    assert "not supported on the clickhouse store" in answer.text
