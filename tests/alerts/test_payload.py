"""What a webhook receives, built as the deliverer builds it: the common schema by default, Slack
and Teams bodies when asked, the receiver's headers, the idempotency key, the HMAC signature."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime

from alerts.delivery import webhook_request
from alerts.payload import common_schema, email_text
from collector.store.alerts import Delivery

SPEC = {"query": "requests | where success == false", "measure": "rows", "operator": "GreaterThan", "severity": 2,
        "window": 300, "evaluation_periods": 1, "failing_periods": 1, "description": "failures", "dynamic": None}
END = datetime(2026, 12, 1, 12, 5)


def _delivery(target: dict) -> Delivery:
    body = common_schema("svc", "failures", SPEC, alert_id="a1", condition="Fired", dimensions={"region": "eu"},
                         value=7.0, threshold=5.0, window_end=END, fired_at=END, resolved_at=None,
                         dashboard_url="http://127.0.0.1:8501")
    return Delivery("k" * 32, "svc", "failures", "a1", "Fired", "g/webhook/0", {"body": body, "target": target})


def test_the_common_schema_with_headers_key_and_signature():
    url, data, headers = webhook_request(_delivery({"kind": "webhook", "url": "http://h/x", "secret": "s",
                                                    "headers": {"Authorization": "Bearer t"}}))
    body = json.loads(data)
    condition = body["data"]["alertContext"]["condition"]
    assert body["schemaId"] == "azureMonitorCommonAlertSchema" and body["data"]["essentials"]["severity"] == "Sev2"
    assert condition["windowStartTime"] == "2026-12-01T12:00:00.000000Z" and condition["windowSize"] == "PT5M"
    assert condition["allOf"][0]["timeAggregation"] == "Count" and condition["allOf"][0]["metricValue"] == 7.0
    assert headers["Authorization"] == "Bearer t" and headers["Idempotency-Key"] == "k" * 32
    assert headers["X-Insights-Signature"] == "sha256=" + hmac.new(b"s", data, hashlib.sha256).hexdigest()


def test_slack_and_teams_bodies_say_which_series_fired():
    _, slack, _ = webhook_request(_delivery({"kind": "webhook", "url": "http://h/x", "format": "slack"}))
    assert json.loads(slack)["text"].startswith("[Fired] Sev2 failures on svc (value 7 GreaterThan 5.0, region=eu)")
    _, teams, headers = webhook_request(_delivery({"kind": "webhook", "url": "http://h/x", "format": "teams"}))
    card = json.loads(teams)
    assert card["@type"] == "MessageCard" and "region=eu" in card["summary"] and "X-Insights-Signature" not in headers
    subject, text = email_text(_delivery({}).payload["body"])
    assert subject.startswith("[Fired]") and "Dimension:  region = eu" in text
