"""Online endpoints on one ClickHouse store (the stand-in: no ClickHouse server can run here) behind two
collector processes: an endpoint defined through either is the same on both, its host (router and
deployments) runs on exactly one collector, the holder of the endpoints lease, whose address the
scoring URI names, and moves to the other (URI included) when the holder stops."""

from __future__ import annotations

import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from collector_process import CollectorProcess, children
from scaleout import FAST_LEASES, START_TIMEOUT_S, migrate, store_env

from collector.client import OnlineEndpoint, Workspace
from collector.store.clickhouse.leases import TTL_ENV

sys.path.insert(0, str(Path(__file__).parents[1] / "endpoints"))
from endpoint_scripts import SCRIPTS  # noqa: E402
from store_helpers import eventually  # noqa: E402

ADDRESSES = ("127.0.0.2", "127.0.0.3")
"""Each collector's INSIGHTS_ENDPOINT_HOST: two loopback addresses stand for two machines' addresses."""


@pytest.fixture(scope="module")
def collectors(clickhouse_server, tmp_path_factory):
    url = clickhouse_server.fresh_url("endpoints")
    migrate(clickhouse_server, url)
    root = tmp_path_factory.mktemp("scaleout-endpoints")
    # leases of the default 15 s rather than FAST_LEASES' 3 s: on a machine shared with other work a
    # 3 s lease lapses now and then, and each lapse would move the hosts (a clean stop releases the
    # lease, so the move below waits only the settle time); one ingestion worker each, as this test
    # sends no telemetry of its own
    pair = [CollectorProcess(root / f"collector-{index}" / "data",
                             env={**store_env(clickhouse_server, url), **FAST_LEASES, TTL_ENV: "15",
                                  "INSIGHTS_INGEST_WORKERS": "1", "INSIGHTS_COLLECTOR_ID": str(index + 1),
                                  "INSIGHTS_ENDPOINT_HOST": address})
            for index, address in enumerate(ADDRESSES)]
    for collector in pair:
        collector.data_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        with ThreadPoolExecutor(len(pair)) as starting:  # both at once
            list(starting.map(lambda collector: collector.start(timeout=START_TIMEOUT_S), pair))
        yield pair
    finally:
        for collector in pair:
            collector.stop()



def _hosts(collectors: list[CollectorProcess], name: str) -> list[CollectorProcess]:
    """The collectors running a host process of endpoint `name` (one entry per host process)."""
    return [collector for collector in collectors if collector.process and collector.process.poll() is None
            for _, args in children(collector.process.pid) if f"endpoints host {name} " in args]


def _answers(endpoint: OnlineEndpoint, key: str) -> str | None:
    """Which deployment answered one request at the scoring URI (None if it was refused or failed)."""
    response = httpx.post(endpoint.scoring_uri, json={"data": [1, 7]}, timeout=30,
                          headers={"authorization": f"Bearer {key}"})
    return response.json()["deployment"] if response.status_code == 200 else None


def _served(endpoint: OnlineEndpoint, deployment: str) -> int:
    """Requests the rollout view counts for `deployment` (from the router's telemetry, via KQL)."""
    return next((d["requests"] for d in endpoint.rollout("PT1H")["deployments"] if d["deployment"] == deployment), 0)


def _steadily(endpoint: OnlineEndpoint, key: str, deployment: str, in_a_row: int = 20, timeout: float = 60.0) -> bool:
    """Whether, within `timeout`, `in_a_row` consecutive requests were all answered by `deployment`."""
    deadline = time.monotonic() + timeout
    streak = 0
    while streak < in_a_row and time.monotonic() < deadline:
        try:
            streak = streak + 1 if _answers(endpoint, key) == deployment else 0
        except httpx.TransportError:
            streak = 0
            time.sleep(0.2)
    return streak >= in_a_row


def test_scaleout_an_endpoint_runs_once_over_two_collectors_and_moves_when_its_holder_stops(collectors):
    first, second = collectors
    name = f"ep-{uuid.uuid4().hex[:8]}"
    through_first = OnlineEndpoint.create(Workspace(first.url, api_key=first.admin_key), name)
    for deployment in ("blue", "green"):  # both start at once
        through_first.create_deployment(deployment, SCRIPTS / f"{deployment}_score.py", wait=False)
    for deployment in ("blue", "green"):
        through_first.wait_for_deployment(deployment, timeout=120)
    through_first.update(traffic="blue=100")
    key = through_first.get_credentials()["primaryKey"]

    # the other collector shows it: its deployments' states, its traffic, its keys, the same scoring URI
    through_second = OnlineEndpoint(Workspace(second.url, api_key=second.admin_key), name)
    assert eventually(lambda: through_second.show()["traffic"] == {"blue": 100}, timeout=30)
    assert {d: s["state"] for d, s in through_second.deployments.items()} == {"blue": "Succeeded", "green": "Succeeded"}
    assert through_second.scoring_uri == through_first.show()["scoring_uri"]
    assert through_second.get_credentials()["primaryKey"] == key

    # exactly one host, on one collector, serves the scoring URI; it stays the only one
    assert eventually(lambda: len(_hosts(collectors, name)) == 1, timeout=30)
    (holder,) = _hosts(collectors, name)
    port = through_first.show()["port"]
    assert through_second.scoring_uri == f"http://{ADDRESSES[collectors.index(holder)]}:{port}/score"
    assert _steadily(through_second, key, "blue")
    assert len(_hosts(collectors, name)) == 1
    # the router's telemetry, sent to the holder, is in the rollout view through the other collector
    assert eventually(lambda: _served(through_second, "blue") >= 20, timeout=60)

    # a traffic change, a deleted deployment and a regenerated key made through the other collector
    # apply to the one host
    through_second.update(traffic="green=100")
    assert _steadily(through_second, key, "green")
    through_second.delete_deployment("blue")
    assert eventually(lambda: list(through_first.deployments) == ["green"], timeout=30)
    new_key = through_second.regenerate_keys("primary")["primaryKey"]
    assert eventually(lambda: httpx.post(through_second.scoring_uri, json={"data": [1]}, timeout=30,
                                          headers={"authorization": f"Bearer {key}"}).status_code == 401, timeout=30)
    assert _answers(through_second, new_key) == "green"

    # the holder stops: the other collector takes the lease and runs the host; requests succeed again
    survivor = second if holder is first else first
    holder.stop()
    assert eventually(lambda: _hosts(collectors, name) == [survivor], timeout=60)
    moved = OnlineEndpoint(Workspace(survivor.url, api_key=survivor.admin_key), name)
    # its scoring URI now names the survivor's address
    assert eventually(lambda: moved.show()["scoring_uri"] == f"http://{ADDRESSES[collectors.index(survivor)]}:{port}/score",
                       timeout=30)
    assert _steadily(moved, new_key, "green")
    assert eventually(lambda: moved.deployments["green"]["state"] == "Succeeded", timeout=30)
    moved.delete()
    assert eventually(lambda: not _hosts(collectors, name), timeout=30)
