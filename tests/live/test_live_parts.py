"""The parts of live metrics a user reads numbers from: percentiles from the merged histograms,
the conditions' errors, and the QuickPulse handshake an idle SDK gets."""

from __future__ import annotations

import httpx
import numpy as np
import pyarrow as pa
import pytest

from live.aggregates import aggregate
from live.appmap import EDGES_KQL, LINKS_KQL, NODES_KQL, UNNAMED, build_map, drilldown_kql
from live.condition import FAILURES, ConditionError, parse
from live.state import MAX_KEYS_PER_SECOND, LiveState


def _requests(service: str, instance: str, durations: list[float], failed: int) -> pa.Table:
    n = len(durations)
    return pa.table({"_service": [service] * n, "cloud_RoleName": ["model"] * n, "cloud_RoleInstance": [instance] * n,
                     "duration": durations, "success": [False] * failed + [True] * (n - failed)})


def test_percentiles_merged_over_instances_are_within_five_percent():
    rng = np.random.default_rng(7)
    a, b = rng.lognormal(4, 1, 3000).tolist(), rng.lognormal(6, 0.5, 1000).tolist()
    seconds = aggregate({"requests": pa.concat_tables([_requests("s", "i1", a, 10), _requests("s", "i2", b, 5)])})
    merged = seconds[("s", "model", "i1")]
    merged.merge(seconds[("s", "model", "i2")])
    assert (merged.requests.count, merged.requests.failed) == (4000, 15)
    for q in (50, 95, 99):
        exact = float(np.percentile(a + b, q))
        assert abs(merged.requests.percentile(q) - exact) <= 0.05 * exact + 1, q


@pytest.mark.parametrize("text, complaint", [
    ("durationx > 5", "unknown column 'durationx'"),
    ('duration > "slow"', "duration is a number"),
    ("success > true", "compare it with == or !="),
    ("duration >", "cannot read"),
    ("customDimensions == 'x'", "unknown column"),
])
def test_a_condition_that_cannot_be_read_says_which_part(text, complaint):
    with pytest.raises(ConditionError, match=complaint):
        parse(text)


def test_conditions_select_the_rows_they_say():
    table = pa.table({"duration": [100.0, 600.0, 900.0], "resultCode": ["200", "500", "200"],
                      "name": ["POST /score", "POST /score", "GET /x"]})
    assert table.filter(parse("duration > 500").mask(table)).num_rows == 2
    assert table.filter(parse('resultCode == "500"').mask(table)).num_rows == 1
    assert table.filter(parse("duration >= 600 and name contains 'score'").mask(table)).num_rows == 1


def test_an_sdk_is_told_nobody_watches_until_someone_does(collector):
    service = collector.create_service("qp-idle")
    ping = f"{collector.url}/QuickPulseService.svc/ping"
    params = {"ikey": service["instrumentation_key"], "api-version": "2024-04-01-preview"}
    assert httpx.post(ping, params=params, json={}).headers["x-ms-qps-subscribed"] == "false"
    assert httpx.post(ping, params={"ikey": "not-a-key"}, json={}).headers["x-ms-qps-subscribed"] == "false"
    with collector.admin as admin:
        admin.get("/api/live", params={"service": service["name"]}).raise_for_status()
    assert httpx.post(ping, params=params, json={}).headers["x-ms-qps-subscribed"] == "true"


def test_the_map_names_a_role_without_a_name_and_quotes_targets():
    rows = {NODES_KQL: [{"role": None, "service": "s", "requests": 4, "failed": 1, "p95": 10.0, "avgDuration": 5.0,
                         "instances": 1}],
            EDGES_KQL: [{"role": None, "target": 'db "main"', "type": "SQL", "calls": 2, "failed": 0,
                         "avgDuration": 3.0, "p95": 4.0, "service": "s"}],
            LINKS_KQL: []}
    found = build_map(rows.__getitem__, 60)  # the queries' rows as the KQL engine answers them
    assert [node["id"] for node in found["nodes"]] == [UNNAMED, 'db "main" (database)']
    (edge,) = found["edges"]
    assert drilldown_kql(edge["source"], edge["target"], edge["targets"])["failures"].startswith(
        'dependencies | where isempty(cloud_RoleName) and target in ("db \\"main\\"")')


def test_memory_stays_bounded_whatever_instances_senders_name():
    state = LiveState()
    many = pa.concat_tables([_requests("s", f"i{n}", [10.0], 0) for n in range(MAX_KEYS_PER_SECOND + 50)])
    state.add_seconds(100, aggregate({"requests": many}), 100.0)
    state.finish_drain(100)
    watcher = state.subscribe("s", None, None, FAILURES)
    (second,) = state.seconds(watcher, 100, 100)
    assert second["requests"]["count"] == MAX_KEYS_PER_SECOND + 50  # nothing lost, the rest counted together
    narrowed = state.subscribe("s", "(other)", "(other)", FAILURES)
    assert state.seconds(narrowed, 100, 100)[0]["requests"]["count"] == 50  # the ones past the bound, together
