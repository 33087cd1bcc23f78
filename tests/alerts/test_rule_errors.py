"""Bad input and failures: a 400 naming the field (and the query's position), evaluation errors
recorded on the rule while the others run on, an unreachable webhook as failed deliveries after
retries, keys limited to their own service; the dry run and muting."""

from __future__ import annotations

from alert_helpers import ikey_of, request_envelope, send, wait_for

RULE = {"name": "r", "frequency": 1, "query": "requests", "operator": "GreaterThan", "threshold": 0}


def test_invalid_kql_is_a_400_naming_the_position(alerting):
    name = alerting.create_service("bad")["name"]
    with alerting.admin as api:
        answer = api.post(f"/api/services/{name}/alert-rules", json={**RULE, "query": "requests\n| where (duration > "})
    assert answer.status_code == 400
    assert answer.json()["field"] == "query" and "line 2, column" in answer.json()["detail"]


def test_unknown_and_bad_fields_are_400s_naming_them(alerting):
    name = alerting.create_service("bad")["name"]
    cases = [({**RULE, "treshold": 3}, "treshold"), ({**RULE, "frequency": "PT48H"}, "frequency"),
             ({**RULE, "split_by": list("abcdef")}, "split_by"), ({**RULE, "measure": "median(x)"}, "measure"),
             ({**RULE, "severity": "Sev7"}, "severity"), ({**RULE, "action_groups": ["nobody"]}, "action_groups"),
             ({**RULE, "threshold": None}, "threshold")]
    with alerting.admin as api:
        for body, field in cases:
            answer = api.post(f"/api/services/{name}/alert-rules", json=body)
            assert (answer.status_code, answer.json()["field"]) == (400, field), body
        metadata = {"name": "g", "webhooks": [{"url": "http://169.254.169.254/latest/meta-data"}]}
        answer = api.post(f"/api/services/{name}/action-groups", json=metadata)
        assert answer.status_code == 400 and "link-local" in answer.json()["detail"]
        assert api.post(f"/api/services/{name}/action-groups", json={"name": "g", "pager": 1}).json()["field"] == "pager"


def test_a_failing_query_is_recorded_on_the_rule_and_the_others_run_on(alerting, receiver):
    service = alerting.create_service("errs")
    name, ikey = service["name"], ikey_of(service)
    with alerting.admin as api:
        api.post(f"/api/services/{name}/action-groups", json={"name": "g", "webhooks": [{"url": receiver.url}]})
        assert api.post(f"/api/services/{name}/alert-rules", json={**RULE, "name": "broken", "measure": "avg(nope)"}).status_code == 201
        api.post(f"/api/services/{name}/alert-rules", json={**RULE, "name": "fine", "action_groups": ["g"]})
        send(alerting, ikey, [request_envelope(ikey)])
        broken = wait_for(lambda: api.get(f"/api/services/{name}/alert-rules/broken").json()["last_error"], 60, "the error")
        assert "unknown column 'nope'" in broken
        wait_for(lambda: receiver.conditions() == ["Fired"], 60, "the other rule to fire")


def test_an_unreachable_webhook_shows_as_failed_deliveries_after_retries(alerting, receiver):
    service = alerting.create_service("down")
    name, ikey = service["name"], ikey_of(service)
    receiver.failing(True)
    with alerting.admin as api:
        api.post(f"/api/services/{name}/action-groups", json={"name": "g", "webhooks": [{"url": receiver.url}]})
        api.post(f"/api/services/{name}/alert-rules", json={**RULE, "action_groups": ["g"]})
        send(alerting, ikey, [request_envelope(ikey)])
        failed = wait_for(lambda: [d for d in api.get(f"/api/services/{name}/alert-deliveries").json()
                                   if d["status"] == "failed"], 60, "the delivery to fail")
    assert failed[0]["attempts"] == 3 and "answered 500" in failed[0]["last_error"]


def test_a_service_key_acts_on_its_own_service_only(alerting):
    mine, other = alerting.create_service("mine"), alerting.create_service("other")
    with alerting.client({"x-api-key": mine["api_key"]}) as api:
        assert api.post(f"/api/services/{mine['name']}/alert-rules", json=RULE).status_code == 201
        assert api.get(f"/api/services/{other['name']}/alert-rules").status_code == 404
        assert api.post(f"/api/services/{other['name']}/alert-rules", json=RULE).status_code == 404
        assert [a["service"] for a in api.get("/api/alerts").json()] in ([], [mine["name"]])


def test_dry_run_says_which_series_would_fire_and_mute_holds_notifications(alerting, receiver):
    service = alerting.create_service("dry")
    name, ikey = service["name"], ikey_of(service)
    send(alerting, ikey, [request_envelope(ikey, region="eu")] * 3 + [request_envelope(ikey, region="us")])
    with alerting.admin as api:
        api.post(f"/api/services/{name}/action-groups", json={"name": "g", "webhooks": [{"url": receiver.url}]})
        rule = {**RULE, "enabled": False, "window": 600, "threshold": 2, "split_by": ["region"],
                "query": "requests | extend region = tostring(customDimensions.region)", "action_groups": ["g"]}
        api.post(f"/api/services/{name}/alert-rules", json=rule)
        dry = api.post(f"/api/services/{name}/alert-rules/r/test").json()
        assert [(s["dimensions"], s["value"], s["failing"]) for s in dry["series"]] == [
            ({"region": "eu"}, 3.0, True), ({"region": "us"}, 1.0, False)]
        assert api.post(f"/api/services/{name}/alert-rules/r/mute", json={"for": "1h"}).json()["muted_until"]
        assert api.patch(f"/api/services/{name}/alert-rules/r", json={"enabled": True}).status_code == 200
        muted = wait_for(lambda: api.get(f"/api/services/{name}/alert-deliveries").json(), 60, "the muted entry")
    assert muted[0]["status"] == "muted" and receiver.received() == []
