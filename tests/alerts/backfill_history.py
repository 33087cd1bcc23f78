"""A seeded week of telemetry for the backfill tests (tests/alerts/test_backfill.py on DuckDB,
tests/clickhouse/test_backfill_clickhouse.py on ClickHouse): requests and exceptions with a daily
cycle, quiet hours with none, two regions, and rules of every shape backfill.py bins (a table alone,
filters, a rule's own summarize, split-by, and texts with comments and strings of every form) or
must not (a query that is not row-local, a window longer than the step), each compared with the
per-window answers."""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pyarrow as pa

from alerts import backfill
from alerts.specs import rule_spec
from collector.store.alerts import Rule, Value
from collector.store.schema import TABLES

SERVICE = "backfill"
BEFORE = datetime(2026, 3, 9, 12, 5)
"""The rule's first window end (on a 5-minute grid, not a 15-minute one: the bins must follow the rule's grid)."""
RULES = [
    {"name": "rows", "query": "requests", "frequency": "PT5M", "window": "PT5M", "dynamic": "medium"},
    {"name": "rows-15", "query": "requests", "frequency": "PT15M", "window": "PT15M", "dynamic": "low"},
    {"name": "failed-by-region", "query": "requests | where success == false | extend region = tostring(customDimensions.region)",
     "frequency": "PT5M", "window": "PT10M", "split_by": ["region"], "dynamic": "high"},
    {"name": "p95", "query": "requests | summarize p95 = percentile(duration, 95)", "measure": "max(p95)",
     "frequency": "PT5M", "window": "PT5M", "dynamic": "medium"},
    {"name": "avg-duration", "query": "requests | where name == 'POST /score'", "measure": "avg(duration)",
     "frequency": "PT15M", "window": "PT15M", "dynamic": "medium"},
    {"name": "exceptions", "query": "exceptions", "frequency": "PT5M", "window": "PT5M", "dynamic": "medium"},
]
NOT_BINNED = [
    {"name": "top", "query": "requests | top 3 by duration", "frequency": "PT5M", "window": "PT5M", "dynamic": "medium"},
    {"name": "long-window", "query": "requests", "frequency": "PT5M", "window": "PT1H", "dynamic": "medium"},
]

COMMENTS = {
    "name": "comments",
    "query": 'requests // the "score" calls | not the health checks, split by region\n'
             "| where name == \"POST /score\" // a 'quote and a | pipe\n"
             '| extend region = tostring(customDimensions.region) // grouped by region "',
    "frequency": "PT5M", "window": "PT5M", "split_by": ["region"], "dynamic": "medium",
}
STRINGS = {
    "name": "strings",
    "query": 'requests\n'
             '| where name in (@"POST /score", ```GET /x|y"by\n)z```, h@\'C:\\\', \'it\\\'s | by\')\n'
             '    or name == "GET /health\\" | summarize by" or name == "https://example.com/(by)"',
    "frequency": "PT15M", "window": "PT15M", "dynamic": "medium",
}
BY_IN_CALLS = {
    "name": "by-in-calls",
    "query": 'requests | summarize slow = countif(duration > 50 and name !has "by"), total = count()\n'
             '    by // "grouped | by" the label\n'
             '    label = iff(name contains "|", "pipe", strcat("by ", name))',
    "measure": "max(slow)", "frequency": "PT5M", "window": "PT5M", "split_by": ["label"], "dynamic": "high",
}
NESTED = {
    "name": "nested",
    "query": 'requests | where ((duration > (10 * (2 + 1))) and (name in ("POST /score", "x)|(y")))\n'
             '| summarize total = sum(duration) by verb = iff((name startswith ("POST")), "post", "other") | where total > (0)',
    "measure": "max(total)", "frequency": "PT5M", "window": "PT5M", "split_by": ["verb"], "dynamic": "low",
}
TRICKY = [COMMENTS, STRINGS, BY_IN_CALLS, NESTED]
"""Rules whose text trips hand-written scanners (comments holding quotes, pipes and `by`; strings of
every form; `by` in calls and strings; nested brackets): backfill.py reads their stages from the
parse tree and bins them (tests/alerts/test_backfill_syntax.py, and on ClickHouse)."""


COMPARED = slice(-48, -24)
"""The windows compared one by one: the last night's six hours, quiet hours included (the whole
week's 672 per-window queries per rule take minutes on shared cores: why backfill.py bins)."""


def rule(body: dict) -> Rule:
    return Rule(SERVICE, body["name"], rule_spec({**body, "operator": "GreaterThan"}, 60))


def _micros(at: datetime) -> int:
    return int((at - datetime(1970, 1, 1)) / timedelta(microseconds=1))


def history() -> dict[str, pa.Table]:
    """Eight days before BEFORE: requests every few minutes by day (none from 01:00 to 04:00), a
    tenth failed, in two regions, and a few exceptions; stamped off the minute (no row on a window
    boundary: see backfill.py on boundaries)."""
    rng = random.Random(21)
    requests, exceptions = [], []
    at = BEFORE - timedelta(days=8)
    while at < BEFORE:
        if not 1 <= at.hour < 4:
            for _ in range(rng.randint(1, 6)):
                stamp = at + timedelta(seconds=rng.randint(1, 58), microseconds=rng.randint(1, 999_999))
                requests.append({"timestamp": _micros(stamp), "name": rng.choice(["POST /score", "GET /health"]),
                                 "success": rng.random() > 0.1, "duration": round(rng.expovariate(1 / 40), 3),
                                 "customDimensions": f'{{"region": "{rng.choice(["eu", "us"])}"}}',
                                 "itemId": f"r{len(requests)}", "itemType": "request", "_service": SERVICE})
            if rng.random() < 0.2:
                exceptions.append({"timestamp": _micros(at + timedelta(seconds=30, microseconds=7)),
                                   "type": "ValueError", "itemId": f"e{len(exceptions)}", "itemType": "exception",
                                   "_service": SERVICE})
        at += timedelta(minutes=3)
    return {"requests": TABLES["requests"].to_arrow(requests), "exceptions": TABLES["exceptions"].to_arrow(exceptions)}


def by_window(values: list[Value]) -> dict[tuple[datetime, str], float | None]:
    return {(v.window_end, v.dims_key): v.value for v in values}


def assert_binned_equals_per_window(store) -> None:
    """Every binnable rule's binned values equal its per-window values (to float rounding); the
    others are not binned (backfill falls back to the per-window queries)."""
    for body in RULES:
        assert_binned_equals_per_window_of(store, body)
    for body in NOT_BINNED:
        found = rule(body)
        assert backfill.binned_values(store, found, backfill.window_ends(found, BEFORE), 30) is None, body["name"]


def assert_binned_equals_per_window_of(store, body: dict) -> None:
    """The rule is binned, and its binned values equal its per-window values (to float rounding)."""
    found = rule(body)
    ends = backfill.window_ends(found, BEFORE)[COMPARED]
    binned = backfill.binned_values(store, found, ends, 30)
    assert binned is not None, body["name"]
    per_window = by_window(backfill.per_window_values(store, found, ends, 30))
    assert per_window, body["name"]
    got = by_window(binned)
    assert got.keys() == per_window.keys(), body["name"]
    for key, value in per_window.items():
        assert (got[key] is None) == (value is None), (body["name"], key)
        if value is not None:
            assert abs(got[key] - value) <= 1e-9 * max(1.0, abs(value)), (body["name"], key, got[key], value)
