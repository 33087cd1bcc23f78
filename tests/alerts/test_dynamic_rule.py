"""A dynamic-threshold rule end to end: a week of seasonal traffic imported into the store, the
rule learns its band from that history (backfilled when it is created), stays quiet on normal
traffic, and fires on an injected spike."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, datetime, timedelta

from alert_helpers import ikey_of, request_envelope, send, wait_for

STEP = timedelta(minutes=15)


def _usual_count(at: datetime) -> int:
    """Requests per 15 minutes at this time of day: ~10 at night, ~30 by day (a daily cycle)."""
    return round(20 + 10 * math.sin((at.hour + at.minute / 60 - 6) / 24 * 2 * math.pi))


def _week_of_requests(now: datetime) -> list[bytes]:
    """Requests every 15 minutes for the past 7 days, `_usual_count` of them each time."""
    lines = []
    at = now - timedelta(days=7)
    while at < now - STEP:
        count = _usual_count(at)
        for index in range(count):
            stamp = (at + timedelta(seconds=index)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            lines.append(json.dumps({"itemType": "request", "timestamp": stamp, "itemId": uuid.uuid4().hex,
                                     "name": "POST /score", "success": True, "duration": 12.0}).encode())
        at += STEP
    return lines


def test_a_learned_band_ignores_normal_traffic_and_fires_on_a_spike(alerting, receiver):
    service = alerting.create_service("dyn")
    name, ikey = service["name"], ikey_of(service)
    now = datetime.now(UTC).replace(tzinfo=None)
    assert alerting.import_rows(name, _week_of_requests(now))["imported"] > 3000
    with alerting.admin as api:
        api.post(f"/api/services/{name}/action-groups", json={"name": "g", "webhooks": [{"url": receiver.url}]})
        rule = {"name": "traffic", "query": "requests", "frequency": 1, "window": 900, "operator": "GreaterOrLessThan",
                "dynamic": "medium", "action_groups": ["g"], "evaluation_periods": 1}
        # The last 15 minutes hold a normal count (sent through ingestion, stamped a minute ago so that
        # the rule's first window holds them): inside the band.
        send(alerting, ikey, [request_envelope(ikey, at=now - timedelta(minutes=1)) for _ in range(_usual_count(now))])
        assert api.post(f"/api/services/{name}/alert-rules", json=rule).status_code == 201
        learned = wait_for(lambda: [v for v in api.get(f"/api/services/{name}/alert-rules/traffic/values?hours=1").json()
                                    if v["upper"] is not None], 60, "a judged window with its band")
        assert learned[-1]["lower"] < learned[-1]["value"] < learned[-1]["upper"]
        assert len(api.get(f"/api/services/{name}/alert-rules/traffic/values?hours=200").json()) > 600  # the backfill
        assert receiver.received() == []
        send(alerting, ikey, [request_envelope(ikey) for _ in range(300)])  # a spike
        wait_for(lambda: receiver.conditions() == ["Fired"], 60, "the spike to fire")
    fired = receiver.received()[0]["json"]["data"]["alertContext"]["condition"]["allOf"][0]
    assert fired["alertSensitivity"] == "Medium" and fired["metricValue"] > float(fired["threshold"])
