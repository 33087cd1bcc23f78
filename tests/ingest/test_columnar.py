"""The column-wise fast path (collector/ingest/columnar.py) stores exactly what the item-by-item
mapper stores: same rows, same answers, same counters, for real SDK payloads, the bench's batches
and generated envelopes that probe every place where the two could part."""

import gzip
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader import batch_body

from collector.ingest.body import split_items
from collector.ingest.prepare import prepare_items

FIXTURES = Path(__file__).parent.parent / "fixtures"
ROUTING = {"key-a": ("svc-a", True), "key-b": ("svc-b", False)}


def outcome(items: list, tmp_path: Path, fast: bool) -> dict:
    """Everything a body's preparation decides, with the random item ids left out."""
    prepared = prepare_items(items, ROUTING, tmp_path / ("fast" if fast else "reference"), fast=fast)
    tables = {}
    for name, table in prepared.tables.items():
        rows = table.to_pylist()
        ids = [row["itemId"] for row in rows]
        assert len(set(ids)) == len(ids), "item ids must be unique"
        # The id also names a spilled payload (customDimensions.payloadRef).
        tables[name] = sorted(
            orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str).replace(row["itemId"].encode(), b"<itemId>")
            for row in rows
        )
    return {
        "received": prepared.received, "accepted": prepared.accepted, "errors": prepared.errors,
        "stats": dict(prepared.stats), "tables": tables,
    }


def assert_same(items: list, tmp_path: Path) -> dict:
    fast = outcome(items, tmp_path, fast=True)
    assert fast == outcome(items, tmp_path, fast=False)
    return fast


def test_bench_batches_are_mapped_alike_and_mostly_column_wise(tmp_path):
    for seed in range(3):
        items = split_items(gzip.decompress(batch_body("key-a", f"op-{seed}", seed)))
        result = assert_same(items, tmp_path)
        assert result["accepted"] == len(items)
        assert sum(len(rows) for rows in result["tables"].values()) == len(items)


def test_real_sdk_payloads_are_mapped_alike(tmp_path):
    """Each captured body alone (one odd item sends a whole body to the mapper), then all together."""
    everything = []
    for path in sorted((FIXTURES / "breeze").glob("*.json")) + sorted((FIXTURES / "azmlinfsrv").glob("*.json")):
        if path.name.endswith("_http_request.json"):  # the HTTP request around a body, not envelopes
            continue
        loaded = orjson.loads(path.read_bytes())
        items = loaded if isinstance(loaded, list) else [loaded]
        for item in items:
            item["iKey"] = "key-a"
        assert assert_same(items, tmp_path)["accepted"] == len(items), path.name
        everything += items
    result = assert_same(everything, tmp_path)
    assert {"traces", "requests", "dependencies", "exceptions", "customEvents"} <= set(result["tables"])


json_values = st.none() | st.booleans() | st.integers(-5, 300) | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6)
time_texts = st.sampled_from([
    "2026-11-23T16:53:49.943891Z", "2026-11-23T16:53:49Z", "2026-11-23T16:53:49.9Z", "2026-11-23T16:53:49.123Z",
    "2026-11-23T16:53:49.9438912Z", "2026-11-23T16:53:49.943891", "2026-11-23T16:53:49+02:00",
    "2026-02-30T00:00:00Z", "1969-12-31T23:59:59.999999Z", "nope", "",
])
times = time_texts | json_values
strings = st.text(max_size=12) | st.sampled_from(["x" * 1100, "y" * 70_000, "é\u0000\n\"\\", "POST /score"])
tag_values = strings | json_values
properties = st.dictionaries(
    st.sampled_from(["Contents", "Request Id", "custom_dimensions", "model", "é"]),
    strings | json_values | st.lists(st.integers(), max_size=3) | st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False)),
    max_size=4,
) | json_values
base_data = st.fixed_dictionaries({}, optional={
    "message": strings | json_values,
    "severityLevel": st.integers(-1, 5) | st.sampled_from(["Warning", "2", "critical"]) | json_values,
    "properties": properties,
    "measurements": st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False, allow_infinity=False) | json_values, max_size=2) | json_values,
    "duration": st.sampled_from(["0.00:00:00.123", "00:00:01.1234567", "1.02:03:04", "00:00:00", "0.00:04:59.999", "bad"]) | json_values,
    "success": json_values | st.sampled_from(["false", " False "]),
    "responseCode": st.sampled_from(["200", "0", "500"]) | json_values,
    "resultCode": st.sampled_from(["200", "0"]) | json_values,
    "id": strings | json_values, "name": strings | json_values, "url": strings | json_values,
    "source": strings, "data": strings | json_values, "target": strings, "type": strings | json_values,
    "dependencyTypeName": strings,
    "metrics": st.just([{"name": "m", "value": 1.5}]),
    "exceptions": st.just([{"typeName": "ValueError", "message": "bad", "parsedStack": [{"level": 0, "method": "run"}]}]),
})
envelopes = st.fixed_dictionaries(
    {"data": st.fixed_dictionaries({}, optional={
        "baseType": st.sampled_from(["MessageData", "RequestData", "RemoteDependencyData", "EventData", "MetricData", "ExceptionData", "X"]),
        "baseData": base_data,
    }) | json_values},
    optional={
        "iKey": st.sampled_from(["key-a", "KEY-A", "key-b", "key-unknown"]) | json_values,
        "time": times,
        "name": st.sampled_from(["Microsoft.ApplicationInsights.Message", "x"]),
        "sampleRate": st.sampled_from([100, 100.0, 50, 33.3]) | json_values,
        "tags": st.dictionaries(
            st.sampled_from(["ai.operation.id", "ai.cloud.role", "ai.location.ip", "ai.internal.sdkVersion", "ai.unknown"]),
            tag_values, max_size=3,
        ) | json_values,
    },
)
plain_base_data = st.fixed_dictionaries(
    {"message": strings, "name": strings},
    optional={
        "severityLevel": st.integers(-1, 5),
        "properties": st.dictionaries(
            st.sampled_from(["Contents", "Request Id", "custom_dimensions"]),
            strings | st.sampled_from(["{'Request Id': 'r1', 'n': 2}"]) | st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False)),
            max_size=3,
        ),
        "measurements": st.dictionaries(st.text(max_size=4), st.floats(allow_nan=False, allow_infinity=False), max_size=2),
        "duration": st.sampled_from(["0.00:00:00.123", "00:00:01.1234567", "1.02:03:04", "00:00:00", "0.00:04:59.999", "bad"]),
        "success": st.booleans(), "responseCode": st.sampled_from(["200", "0", "500"]), "resultCode": st.sampled_from(["200", "0"]),
        "id": strings, "url": strings, "source": strings, "data": strings, "target": strings, "type": strings,
        "dependencyTypeName": strings,
        "metrics": st.lists(st.fixed_dictionaries(
            {"name": st.sampled_from(["inference_ms", "_OTELRESOURCE_", "\\Processor(_Total)\\% Processor Time"]),
             "value": st.floats(allow_nan=False, allow_infinity=False) | st.integers(-3, 3) | st.booleans()},
            optional={"count": st.integers(0, 3) | st.floats(0, 3), "min": st.floats(-1, 1), "max": st.floats(-1, 1),
                      "stdDev": st.floats(0, 1) | st.text(max_size=2)},
        ), min_size=1, max_size=2),
    },
)
plain_envelopes = st.fixed_dictionaries({
    "iKey": st.sampled_from(["key-a", "KEY-A", "key-b", "key-unknown"]), "time": time_texts,
    "tags": st.dictionaries(st.sampled_from(["ai.operation.id", "ai.cloud.role", "ai.location.ip"]), st.text(max_size=8), max_size=2),
    "data": st.fixed_dictionaries({
        "baseType": st.sampled_from(["MessageData", "RequestData", "RemoteDependencyData", "EventData", "MetricData"]),
        "baseData": plain_base_data,
    }),
})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(envelopes, min_size=1, max_size=6))
def test_generated_envelopes_are_mapped_alike(tmp_path, items):
    assert_same(items, tmp_path)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(plain_envelopes, min_size=1, max_size=6))
def test_generated_plain_envelopes_are_mapped_alike(tmp_path, items):
    """Bodies whose every value has the canonical type, the ones the fast path keeps for itself,
    with the edges it must hand to the mapper: bad severities and durations, code "0", the
    azmlinfsrv custom_dimensions, unknown and disabled services, unusual timestamps."""
    assert_same(items, tmp_path)


def test_items_near_the_cap_are_mapped_alike(tmp_path):
    """Either side of 64 KB, in the message, a property, a url, a tag: capped and spilled alike."""
    items = []
    for size in (60_000, 66_000, 200_000):
        text = "x" * size
        common = {"iKey": "key-a", "time": "2026-11-23T16:53:49.943891Z", "tags": {"ai.operation.id": "op"}}
        items += [
            {**common, "data": {"baseType": "MessageData", "baseData": {"message": text}}},
            {**common, "data": {"baseType": "MessageData", "baseData": {"message": "STDOUT", "properties": {"Contents": {"input": text}}}}},
            {**common, "data": {"baseType": "RequestData", "baseData": {
                "id": "1", "name": "POST /score", "url": "http://h/?" + text, "duration": "00:00:00.001", "responseCode": "200"}}},
        ]
    result = assert_same(items, tmp_path)
    assert result["stats"][("svc-a", "capped")] == 6


def _nested(levels: int) -> dict:
    value: dict = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


def _plain(base_type: str, **base) -> dict:
    return {"iKey": "key-a", "time": "2026-11-23T16:53:49.943891Z", "tags": {"ai.operation.id": "op"},
            "data": {"baseType": base_type, "baseData": base}}


EDGES = {
    "response code beside result code": _plain("RequestData", id="1", name="n", duration="00:00:00.010", responseCode="500", resultCode="200"),
    "null response code": _plain("RequestData", id="1", name="n", duration="00:00:00.010", responseCode=None, resultCode="200"),
    "code 0 and duration 0": _plain("RequestData", id="1", name="n", duration="00:00:00", responseCode="0",
                                    properties={"resultCode": "500", "duration": "0:00:00.5"}),
    "long tag": {**_plain("MessageData", message="m"), "tags": {"ai.operation.id": "x" * 1100}},
    "no tags, beside items with tags": {key: value for key, value in _plain("MessageData", message="m").items() if key != "tags"},
    "null tags, beside items with tags": {**_plain("MessageData", message="m"), "tags": None},
    "severity 5": _plain("MessageData", message="m", severityLevel=5),
    "severity as a word": _plain("MessageData", message="m", severityLevel="Warning"),
    "stringified custom_dimensions": _plain("MessageData", message="m", properties={"custom_dimensions": "{'Request Id': 'r1'}"}),
    "dependency type from its type name": _plain("RemoteDependencyData", name="q", duration="0.00:00:01", dependencyTypeName="SQL"),
    "success as text": _plain("RemoteDependencyData", name="q", duration="0.00:00:01", success="false"),
    "naive timestamp": {**_plain("EventData", name="e"), "time": "2026-11-23T16:53:49.943891"},
    "sampled": {**_plain("EventData", name="e"), "sampleRate": 25},
    "metric": _plain("MetricData", metrics=[{"name": "m", "value": 2, "count": 3, "min": 1, "max": 4, "stdDev": 0.5}]),
    "metric sampled": {**_plain("MetricData", metrics=[{"name": "m", "value": 2}]), "sampleRate": 50},
    "two metrics": _plain("MetricData", metrics=[{"name": "a", "value": 1}, {"name": "b", "value": 2}]),
    "SDK self-metric": _plain("MetricData", metrics=[{"name": "_OTELRESOURCE_", "value": 1}]),
    "metric as a boolean": _plain("MetricData", metrics=[{"name": "m", "value": True}]),
    "metric with measurements": _plain("MetricData", metrics=[{"name": "m", "value": 1}], measurements={"x": "bad"}),
    "null item": None,
    "empty item": {},
    # Out of range for a column: the item's 400 on both paths, never the batch's failure.
    "metric count past 2^31": _plain("MetricData", metrics=[{"name": "m", "value": 2, "count": 2**31}]),
    "metric count of 1e12": _plain("MetricData", metrics=[{"name": "m", "value": 2, "count": 1e12}]),
    "metric value NaN": _plain("MetricData", metrics=[{"name": "m", "value": float("nan")}]),
    "metric max infinite": _plain("MetricData", metrics=[{"name": "m", "value": 1, "max": float("inf")}]),
    "measurement NaN": _plain("EventData", name="e", measurements={"x": "nan"}),
    "sample rate of 1e-9": {**_plain("EventData", name="e"), "sampleRate": 1e-9},
    "year 0": {**_plain("MessageData", message="m"), "time": "0000-01-01T00:00:00Z"},
    "year 10000 by its offset": {**_plain("MessageData", message="m"), "time": "9999-12-31T23:59:59-01:00"},
    "properties nested 300 deep": _plain("MessageData", message="m", properties={"deep": _nested(300)}),
    "properties nested 100 deep": _plain("MessageData", message="m", properties={"deep": _nested(99)}),
    "duration of 10^20 days": _plain("RequestData", id="1", name="n", duration="9" * 20 + ".00:00:00", responseCode="200"),
}


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_edges_are_mapped_alike(tmp_path, edge):
    """Each edge alone, and among plain items (where the body as a whole stays on the fast path)."""
    assert_same([EDGES[edge]], tmp_path)
    assert_same([_plain("MessageData", message="before"), EDGES[edge], _plain("EventData", name="after")], tmp_path)
