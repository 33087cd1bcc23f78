"""kill -9 of the collector while rules fire and notifications are in flight: after a restart on the
same data dir, every alert instance has had exactly one Fired notification (one idempotency key),
none lost, none made twice; a delivery cut off mid-flight is resent with its key."""

from __future__ import annotations

from collections import Counter

from alert_helpers import fast_collector, ikey_of, request_envelope, send, wait_for

SERIES = 20


def test_kill_9_loses_no_fired_notification_and_duplicates_none(tmp_path, receiver):
    data_dir = tmp_path / "data"
    collector = fast_collector(data_dir).start()
    try:
        service = collector.create_service("crash")
        name, ikey = service["name"], ikey_of(service)
        with collector.admin as api:
            api.post(f"/api/services/{name}/action-groups", json={"name": "hook", "webhooks": [{"url": receiver.url}]})
            rule = {"name": "per-series", "frequency": 1, "window": 120, "split_by": ["series"],
                    "query": "requests | extend series = tostring(customDimensions.region)",
                    "operator": "GreaterThan", "threshold": 0, "action_groups": ["hook"]}
            assert api.post(f"/api/services/{name}/alert-rules", json=rule).status_code == 201
        receiver.slow(0.3)  # deliveries take a while: many are in flight or pending at the kill
        send(collector, ikey, [request_envelope(ikey, region=f"s{i:02d}") for i in range(SERIES)])
        wait_for(lambda: len(receiver.received()) >= 3, 30, "the first deliveries")
        collector.kill()
        got_before = len(receiver.received())
        assert got_before < SERIES, "the kill came too late to test anything"
        collector = fast_collector(data_dir).start()
        wait_for(lambda: len({r["json"]["data"]["essentials"]["originAlertId"] for r in receiver.received()}) >= SERIES,
                 60, "a Fired notification for every series")
        receiver.slow(0)
        with collector.admin as api:
            wait_for(lambda: all(d["status"] == "delivered" for d in api.get(f"/api/services/{name}/alert-deliveries").json()),
                     30, "the ledger to settle")
            log = api.get(f"/api/services/{name}/alert-deliveries").json()
            instances = api.get(f"/api/services/{name}/alerts").json()
    finally:
        collector.stop()
    received = receiver.received()
    assert set(receiver.conditions()) == {"Fired"}
    by_series = Counter(r["json"]["data"]["alertContext"]["condition"]["allOf"][0]["dimensions"][0]["value"]
                        for r in {r["headers"]["Idempotency-Key"]: r for r in received}.values())
    assert by_series == Counter({f"s{i:02d}": 1 for i in range(SERIES)})  # one Fired notification each
    assert len(log) == SERIES and len({d["key"] for d in log}) == SERIES
    assert sorted(i["dimensions"]["series"] for i in instances if i["state"] == "Fired") == [f"s{i:02d}" for i in range(SERIES)]
    # Resent are only those cut off in flight at the kill (a 4-worker pool), those delivered before it
    # whose "delivered" had not been committed yet (at most what the receiver had got by then), and
    # those retried after a timeout on a loaded machine (counted in the ledger): the receiver dedupes
    # them by key.
    assert len(received) - SERIES <= 4 + got_before + sum(d["attempts"] - 1 for d in log)
