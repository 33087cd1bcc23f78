"""Generated envelopes thrown at the real collector: it answers 200, 206 or 400, never a 5xx, and
its counters stay consistent with what it answered."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
base_types = st.sampled_from(
    ["MessageData", "RequestData", "RemoteDependencyData", "ExceptionData", "EventData", "MetricData", "PageViewData", "X"]
)
base_fields = st.fixed_dictionaries(
    {},
    optional={
        "message": json_values, "severityLevel": st.integers(-2, 6) | st.text(max_size=12) | json_values,
        "name": json_values, "id": json_values, "duration": st.text(max_size=20) | json_values,
        "responseCode": json_values, "resultCode": json_values, "success": json_values, "url": json_values,
        "properties": st.dictionaries(st.text(max_size=10), json_values, max_size=5) | json_values,
        "measurements": st.dictionaries(st.text(max_size=10), json_values, max_size=3) | json_values,
        "exceptions": st.lists(st.fixed_dictionaries({}, optional={
            "typeName": json_values, "message": json_values, "stack": st.text(max_size=200) | json_values,
            "parsedStack": st.lists(json_values | st.text(max_size=30), max_size=3) | json_values}), max_size=3) | json_values,
        "metrics": st.lists(st.fixed_dictionaries({}, optional={
            "name": json_values, "value": json_values, "count": json_values, "min": json_values}), max_size=3) | json_values,
    },
)


def envelopes(ikey: str):
    return st.fixed_dictionaries(
        {"data": st.fixed_dictionaries({"baseType": base_types, "baseData": base_fields}) | json_values},
        optional={
            "iKey": st.just(ikey) | json_values,
            "time": st.sampled_from(["2026-11-23T16:53:49.9438912Z", "2026-11-23T16:53:49", "nope", ""]) | json_values,
            "tags": st.dictionaries(st.sampled_from(["ai.operation.id", "ai.cloud.role", "ai.x"]), json_values) | json_values,
            "sampleRate": json_values,
            "name": json_values,
        },
    )


def test_generated_envelopes_never_cause_a_5xx(app_collector):
    service = app_collector.create_service("fuzz")
    ikey = service["instrumentation_key"]
    answered = {"received": 0, "accepted": 0}

    @settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(st.lists(envelopes(ikey) | json_values, min_size=1, max_size=8))
    def check(items):
        response = app_collector.http.post("/v2.1/track", json=items)
        assert response.status_code in (200, 206, 400), response.text
        body = response.json()
        assert body["itemsReceived"] == len(items)
        assert body["itemsAccepted"] + len(body["errors"]) == len(items)
        assert all(e["statusCode"] == 400 and e["message"] for e in body["errors"])
        answered["accepted"] += body["itemsAccepted"]

    check()
    assert app_collector.http.get("/healthz").status_code == 200
    with app_collector.admin as admin:
        stats = admin.get(f"/api/services/{service['name']}/stats").json()
    assert stats["accepted"] == answered["accepted"]
