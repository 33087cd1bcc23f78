"""Log alert rules on data sent through the real ingestion path, evaluated by the collector's
scheduler, notifying a real webhook receiver process in Azure Monitor's common alert schema."""

from __future__ import annotations

import hashlib
import hmac

from alert_helpers import ikey_of, request_envelope, send, wait_for


def test_split_rule_fires_per_dimension_and_resolves_with_the_common_schema(alerting, receiver):
    service = alerting.create_service("alerts")
    name, ikey = service["name"], ikey_of(service)
    with alerting.admin as api:
        group = {"name": "oncall", "webhooks": [{"url": receiver.url, "secret": "s3cret", "headers": {"X-Team": "ml"}}]}
        assert api.post(f"/api/services/{name}/action-groups", json=group).status_code == 201
        rule = {"name": "failures", "severity": "Sev1", "frequency": 2, "window": 4, "split_by": ["region"],
                "query": "requests | where success == false | extend region = tostring(customDimensions.region)",
                "measure": "rows", "operator": ">", "threshold": 2, "action_groups": ["oncall"]}
        created = api.post(f"/api/services/{name}/alert-rules", json=rule)
        assert created.status_code == 201, created.text
        send(alerting, ikey, [request_envelope(ikey, success=False, region="eu") for _ in range(5)]
             + [request_envelope(ikey, success=False, region="us")] + [request_envelope(ikey)] * 3)
        fired = wait_for(lambda: receiver.received(), 60, "the Fired notification")
        body = fired[0]["json"]
        essentials, context = body["data"]["essentials"], body["data"]["alertContext"]
        assert body["schemaId"] == "azureMonitorCommonAlertSchema"
        assert essentials["monitorCondition"] == "Fired" and essentials["severity"] == "Sev1"
        assert essentials["alertRule"] == "failures" and essentials["signalType"] == "Log"
        assert essentials["monitoringService"] == "Log Alerts V2" and essentials["firedDateTime"]
        criterion = context["condition"]["allOf"][0]
        assert context["conditionType"] == "LogQueryCriteria" and context["condition"]["windowSize"] == "PT4S"
        assert criterion["dimensions"] == [{"name": "region", "value": "eu"}]  # us had 1 failure: not over 2
        assert criterion["metricValue"] == 5 and criterion["operator"] == "GreaterThan" and criterion["threshold"] == "2.0"
        assert criterion["searchQuery"] == rule["query"]
        headers = {k.lower(): v for k, v in fired[0]["headers"].items()}
        assert headers["x-team"] == "ml" and len(headers["idempotency-key"]) == 32
        expected = hmac.new(b"s3cret", fired[0]["body"].encode(), hashlib.sha256).hexdigest()
        assert headers["x-insights-signature"] == f"sha256={expected}"
        # Nothing more fails: the instance resolves, once, and nothing else is sent.
        wait_for(lambda: receiver.conditions() == ["Fired", "Resolved"], 60, "the Resolved notification")
        resolved = receiver.received()[1]["json"]["data"]["essentials"]
        assert resolved["originAlertId"] == essentials["originAlertId"] and resolved["resolvedDateTime"]
        alerts = api.get(f"/api/services/{name}/alerts").json()
        assert [(a["dimensions"], a["state"]) for a in alerts if a["fired_at"]] == [({"region": "eu"}, "Resolved")]
        log = api.get(f"/api/services/{name}/alert-deliveries").json()
        assert sorted(d["condition"] for d in log) == ["Fired", "Resolved"]
        assert all(d["status"] == "delivered" and d["attempts"] == 1 for d in log)
