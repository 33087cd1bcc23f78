"""Alerts and availability tests with two collector processes on one ClickHouse store (the stand-in:
no ClickHouse server can run here). Rules, action groups and tests made through either collector are
read through the other; exactly one collector (the alerts lease's holder) evaluates, notifies a real
webhook receiver process and probes; when it is killed (kill -9), the other carries on from the same
state: the fired instance is not fired again, it resolves once, and no notification is made twice."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import httpx
import pytest
from scaleout import collector_pair

sys.path.insert(0, str(Path(__file__).parents[1] / "alerts"))
from alert_helpers import FAST_ALERTS, Receiver, ikey_of, request_envelope, send, wait_for  # noqa: E402

TIMEOUT_S = 90
"""Two collectors, the stand-in and a receiver on two shared cores: generous, never waited out when green."""


@pytest.fixture(scope="module")
def collectors(clickhouse_server, tmp_path_factory):
    env = {**FAST_ALERTS, "INSIGHTS_ALERTS_MAX_ATTEMPTS": "10"}  # retries outlast a receiver that is down a while
    with collector_pair(clickhouse_server, "alerts", tmp_path_factory.mktemp("scaleout-alerts"), env) as pair:
        yield pair


@pytest.fixture
def receiver(tmp_path):
    process = Receiver(tmp_path / "receiver")
    yield process
    process.stop()


def _active(collector) -> bool:
    """Whether this collector evaluates rules now (holds the alerts lease)."""
    with collector.admin as api:
        return api.get("/api/alerts/scheduler").json()["active"]


def _holder(collectors):
    active = [c for c in collectors if c.process.poll() is None and _active(c)]
    return active[0] if len(active) == 1 else None


class FailingTraffic:
    """Failing requests sent through the real ingestion path of the given collectors, a few a second."""

    def __init__(self, service: dict, targets: list) -> None:
        self.ikey, self.targets = ikey_of(service), list(targets)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FailingTraffic:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.3):
            for target in list(self.targets):
                try:
                    send(target, self.ikey, [request_envelope(self.ikey, success=False) for _ in range(3)])
                except httpx.TransportError:  # the collector the test stopped
                    self.targets.remove(target)
                except AssertionError:  # a 503 on a loaded machine: the next round sends again
                    pass

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _keys(receiver: Receiver) -> list[str]:
    return [next(v for k, v in entry["headers"].items() if k.lower() == "idempotency-key") for entry in receiver.received()]


def test_scaleout_an_availability_test_made_on_one_collector_is_probed_once_and_read_on_both(collectors):
    first, second = collectors
    service = first.create_service("probed")
    name = service["name"]
    with second.admin as api:
        wait_for(lambda: api.get(f"/api/services/{name}").status_code == 200, TIMEOUT_S, "the service on the second")
        created = api.post(f"/api/services/{name}/availability-tests", json={
            "name": "health", "url": f"{first.url}/healthz", "method": "GET", "frequency": 1, "timeout": 10})
        assert created.status_code == 201, created.text
    with first.admin as api:  # made on the second, listed on the first (within the 2 s it may cache the list)
        wait_for(lambda: [t["name"] for t in api.get(f"/api/services/{name}/availability-tests").json()] == ["health"],
                 TIMEOUT_S, "the test listed on the first")
    query = "availabilityResults | where name == 'health' and success == true"
    for collector in collectors:  # whichever collector probed, KQL on either reads the runs
        run = wait_for(lambda c=collector: c.query(query, service=name), TIMEOUT_S, f"a run read on {collector.url}")[0]
        assert run["message"] == "Passed" and run["location"] == "local" and run["size"] > 0
    wait_for(lambda: _holder(collectors), TIMEOUT_S, "exactly one collector holding the alerts lease")


def test_scaleout_split_instances_are_retried_until_delivered_and_read_on_both(collectors, receiver):
    first, second = collectors
    service = second.create_service("split")
    name, ikey = service["name"], ikey_of(service)
    receiver.failing(True)  # down at first: the holder records failed attempts and retries
    with second.admin as api:
        assert api.post(f"/api/services/{name}/action-groups",
                        json={"name": "oncall", "webhooks": [{"url": receiver.url}]}).status_code == 201
        rule = {"name": "by-region", "frequency": 1, "window": 60, "split_by": ["region"], "measure": "rows",
                "query": "requests | where success == false | extend region = tostring(customDimensions.region)",
                "operator": ">", "threshold": 0, "action_groups": ["oncall"]}
        assert api.post(f"/api/services/{name}/alert-rules", json=rule).status_code == 201
    wait_for(lambda: _service_known(first, name), TIMEOUT_S, "the service on the first")
    send(first, ikey, [request_envelope(ikey, success=False, region=region) for region in ("eu", "us")])
    with first.admin as api:  # the ledger, written by whichever collector evaluates, read on the other
        wait_for(lambda: any(d["last_error"] and d["status"] == "pending"
                             for d in api.get(f"/api/services/{name}/alert-deliveries").json()),
                 TIMEOUT_S, "a failed attempt, to be retried")
        receiver.failing(False)
        wait_for(lambda: receiver.conditions() == ["Fired", "Fired"], TIMEOUT_S, "a Fired notification per region")
        log = wait_for(lambda: (d := api.get(f"/api/services/{name}/alert-deliveries").json())
                       and all(x["status"] == "delivered" for x in d) and d, TIMEOUT_S, "the ledger to settle")
        alerts = api.get(f"/api/services/{name}/alerts").json()
    assert len(log) == 2 and max(d["attempts"] for d in log) >= 2
    assert sorted((a["dimensions"]["region"], a["state"]) for a in alerts) == [("eu", "Fired"), ("us", "Fired")]
    assert len(set(_keys(receiver))) == 2


def _service_known(collector, name: str) -> bool:
    with collector.admin as api:
        return api.get(f"/api/services/{name}").status_code == 200


def test_scaleout_a_rule_fires_once_over_two_collectors_and_the_other_takes_over(collectors, receiver):
    first, second = collectors
    service = first.create_service("alerting")
    name = service["name"]
    with first.admin as api:
        assert api.post(f"/api/services/{name}/action-groups",
                        json={"name": "oncall", "webhooks": [{"url": receiver.url}]}).status_code == 201
        rule = {"name": "failures", "severity": "Sev1", "frequency": 2, "window": 4, "query": "requests | where success == false",
                "measure": "rows", "operator": ">", "threshold": 2, "action_groups": ["oncall"]}
        created = api.post(f"/api/services/{name}/alert-rules", json=rule)
        assert created.status_code == 201, created.text
    with second.admin as api:  # the rule made on the first is listed on the second (within 2 s)
        wait_for(lambda: api.get(f"/api/services/{name}").status_code == 200, TIMEOUT_S, "the service on the second")
        wait_for(lambda: [r["name"] for r in api.get(f"/api/services/{name}/alert-rules").json()] == ["failures"],
                 TIMEOUT_S, "the rule listed on the second")
    with FailingTraffic(service, collectors):  # both collectors ingest failing requests
        wait_for(lambda: receiver.conditions() == ["Fired"], TIMEOUT_S, "the Fired notification")
        holder = wait_for(lambda: _holder(collectors), TIMEOUT_S, "one collector holding the alerts lease")
        survivor = second if holder is first else first
        evaluated = _evaluated(survivor)
        holder.kill()  # kill -9: the lease runs out (3 s here) and the other takes it over
        wait_for(lambda: _active(survivor), TIMEOUT_S, "the other collector to take the alerts lease over")
        # it goes on evaluating the same fired instance, still failing: nothing new to say
        wait_for(lambda: _evaluated(survivor) >= evaluated + 2, TIMEOUT_S, "evaluations on the survivor")
        assert receiver.conditions() == ["Fired"]
    wait_for(lambda: receiver.conditions() == ["Fired", "Resolved"], TIMEOUT_S, "the Resolved notification")
    # one notification per state change: two idempotency keys (a delivery cut off by the kill before
    # its "delivered" was recorded is sent again with its key, which the receiver drops)
    assert len(set(_keys(receiver))) == 2
    with survivor.admin as api:  # the receiver's answer is recorded just after it got the request
        log = wait_for(lambda: (d := api.get(f"/api/services/{name}/alert-deliveries").json())
                       and all(x["status"] == "delivered" for x in d) and d, TIMEOUT_S, "the ledger to settle")
        alerts = api.get(f"/api/services/{name}/alerts").json()
    assert sorted(d["condition"] for d in log) == ["Fired", "Resolved"]
    assert [a["state"] for a in alerts] == ["Resolved"]


def _evaluated(collector) -> int:
    with collector.admin as api:
        return api.get("/api/alerts/scheduler").json()["evaluated"]
