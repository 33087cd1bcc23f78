"""One evaluation of a log alert rule over one window: run its query in its service's scope, measure
each dimension combination, judge it against the threshold (fixed or learned), move each alert
instance's state, and say which notifications the state changes owe.

Everything here is a pure function of the rule, the window end, the query's answer and the stored
instances (alert ids are derived from the instance and the window it fired in), so an evaluation
redone after a crash decides exactly what the lost one did, down to the idempotency keys.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

from alerts import dynamic
from alerts.payload import common_schema
from alerts.specs import OPERATORS, VALUE_COLUMN, measured_query
from collector.kql import QueryResult, run_query
from collector.kql.clickhouse.execute import query_connection
from collector.store.alerts import MUTED, PENDING, Delivery, Evaluation, Instance, Rule, Value
from collector.store.database import Store

FIRED, RESOLVED = "Fired", "Resolved"
MAX_INSTANCES = 200
"""Dimension combinations one rule judges per window at most (the largest values first)."""


class EvaluationError(Exception):
    """The query failed or its result does not fit the rule; recorded on the rule."""


@dataclass(frozen=True)
class Measured:
    dims_key: str
    dimensions: dict
    value: float | None


@dataclass(frozen=True)
class Judged:
    measured: Measured
    threshold: float | None
    bounds: tuple[float, float] | None
    failing: bool


def dims_key(dimensions: dict) -> str:
    return orjson.dumps(dimensions, option=orjson.OPT_SORT_KEYS).decode() if dimensions else ""


def run_window(store: Store, rule: Rule, window_end: datetime, timeout_s: float) -> QueryResult:
    """The rule's measured query over [window_end - window, window_end], in its service's scope only."""
    start = window_end - timedelta(seconds=rule.spec["window"])
    return run_span(store, rule.service, measured_query(rule.spec), start, window_end, timeout_s, MAX_INSTANCES * 10)


def run_span(store: Store, service: str, kql: str, start: datetime, end: datetime, timeout_s: float,
             max_rows: int) -> QueryResult:
    """`kql` over the rows of [start, end] (both included), in `service`'s scope only."""
    timespan = f"{start.isoformat()}Z/{end.isoformat()}Z"
    try:
        with query_connection(store) as cursor:
            return run_query(cursor, kql, services=[service], timespan=timespan, timeout_s=timeout_s,
                             max_rows=max_rows)
    except Exception as error:  # a KqlError, a timeout, the store refusing: all recorded on the rule
        raise EvaluationError(f"the query failed: {error}") from None


def measure(result: QueryResult, spec: dict) -> list[Measured]:
    """The measure of each dimension combination in the result (one, with no dimensions)."""
    names = [name for name, _ in result.columns]
    dim_index = [names.index(d) for d in spec["split_by"]]
    value_index = names.index(VALUE_COLUMN)
    measured = []
    for row in result.rows:
        dims = {d: ("" if row[i] is None else str(row[i])) for d, i in zip(spec["split_by"], dim_index)}
        value = row[value_index]
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise EvaluationError(f"the measure is {value!r}, not a number")
        measured.append(Measured(dims_key(dims), dims, None if value is None else float(value)))
    measured.sort(key=lambda m: -(m.value or 0))
    return measured[:MAX_INSTANCES]


def judge(spec: dict, measured: Measured, history: list[Value], window_end: datetime) -> Judged:
    if spec.get("dynamic"):
        own = [v for v in history if v.dims_key == measured.dims_key]
        bounds = dynamic.band([v.window_end for v in own], [v.value for v in own], window_end, spec["dynamic"])
        failing = dynamic.breaches(measured.value, bounds, spec["operator"])
        threshold = None if bounds is None else (bounds[0] if spec["operator"] == "LessThan" else bounds[1])
        return Judged(measured, threshold, bounds, failing)
    threshold = spec["threshold"]
    failing = measured.value is not None and OPERATORS[spec["operator"]](measured.value, threshold)
    return Judged(measured, threshold, None, failing)


def evaluate(store: Store, rule: Rule, window_end: datetime, timeout_s: float, dashboard_url: str) -> Evaluation:
    """What evaluating `rule` at `window_end` commits (see the module doc)."""
    spec = rule.spec
    history = store.alerts.values(rule.service, rule.name, window_end - timedelta(days=28)) if spec.get("dynamic") else []
    try:
        judged = [judge(spec, m, history, window_end) for m in measure(run_window(store, rule, window_end, timeout_s), spec)]
    except EvaluationError as error:
        return Evaluation(rule.service, rule.name, window_end, [], [], [], error=str(error))
    existing = {i.dims_key: i for i in store.alerts.instances(rule.service, rule.name)}
    by_key = {j.measured.dims_key: j for j in judged}
    for key, instance in existing.items():  # a fired combination absent from this window is clear
        by_key.setdefault(key, Judged(Measured(key, instance.dimensions, None), instance.threshold, None, False))
    instances, changes = [], []
    for key, verdict in by_key.items():
        instance, change = step(spec, existing.get(key), rule, verdict, window_end)
        instances.append(instance)
        if change:
            changes.append(instance)
    values = [Value(j.measured.dims_key, window_end, j.measured.value, *(j.bounds or (None, None))) for j in judged]
    deliveries = notifications(store, rule, changes, existing, window_end, dashboard_url)
    return Evaluation(rule.service, rule.name, window_end, instances, values, deliveries)


def step(spec: dict, old: Instance | None, rule: Rule, verdict: Judged, window_end: datetime) -> tuple[Instance, bool]:
    """The instance after this window, and whether its state changed (Fired or Resolved)."""
    m = verdict.measured
    instance = Instance(rule.service, rule.name, m.dims_key, m.dimensions) if old is None else Instance(**vars(old))
    instance.value, instance.threshold = m.value, verdict.threshold
    instance.history = (instance.history + [verdict.failing])[-spec["evaluation_periods"]:]
    met = sum(instance.history) >= spec["failing_periods"]
    if instance.state != FIRED:
        if not met:
            return instance, False
        instance.state, instance.fired_at, instance.resolved_at, instance.clear_since = FIRED, window_end, None, None
        instance.alert_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"{rule.service}/{rule.name}/{m.dims_key}/{window_end.isoformat()}"))
        return instance, True
    if met:
        instance.clear_since = None
        return instance, False
    instance.clear_since = instance.clear_since or window_end
    if window_end - instance.clear_since < timedelta(seconds=spec["resolve_after"]):
        return instance, False
    instance.state, instance.resolved_at = RESOLVED, window_end
    return instance, True


def notifications(store: Store, rule: Rule, changes: list[Instance], existing: dict[str, Instance],
                  window_end: datetime, dashboard_url: str) -> list[Delivery]:
    """One ledger entry per state change and receiver of the rule's action groups; muted (recorded,
    not sent) while the rule is muted or within mute_actions_for of its previous firing."""
    if not changes:
        return []
    spec = rule.spec
    groups = store.alerts.action_groups(rule.service)
    last_fired = max((i.fired_at for i in existing.values() if i.fired_at), default=None)
    muted = (rule.muted_until is not None and rule.muted_until > window_end) or (
        last_fired is not None and window_end - last_fired < timedelta(seconds=spec["mute_actions_for"]))
    out = []
    for instance in changes:
        body = common_schema(rule.service, rule.name, spec, alert_id=str(instance.alert_id), condition=instance.state,
                             dimensions=instance.dimensions, value=instance.value, threshold=instance.threshold,
                             window_end=window_end, fired_at=instance.fired_at, resolved_at=instance.resolved_at,
                             dashboard_url=dashboard_url)
        for group_name in spec["action_groups"]:
            for receiver, target in receivers(group_name, groups.get(group_name, {})):
                key = hashlib.sha256(f"{instance.alert_id}|{instance.state}|{receiver}".encode()).hexdigest()[:32]
                out.append(Delivery(key, rule.service, rule.name, str(instance.alert_id), instance.state, receiver,
                                    {"body": body, "target": target}, MUTED if muted else PENDING))
    return out


def receivers(group_name: str, group: dict) -> list[tuple[str, dict]]:
    """(receiver label, how to reach it) for each webhook and email of an action group."""
    found = [(f"{group_name}/webhook/{i}", {"kind": "webhook", **hook}) for i, hook in enumerate(group.get("webhooks", []))]
    found += [(f"{group_name}/email/{address}", {"kind": "email", "to": address}) for address in group.get("emails", [])]
    return found


def dry_run(store: Store, rule: Rule, window_end: datetime, timeout_s: float) -> list[dict]:
    """What the rule would judge right now, per series, without committing anything."""
    spec = rule.spec
    history = store.alerts.values(rule.service, rule.name, window_end - timedelta(days=28)) if spec.get("dynamic") else []
    result = run_window(store, rule, window_end, timeout_s)
    return [{"dimensions": j.measured.dimensions, "value": j.measured.value, "threshold": j.threshold,
             "band": list(j.bounds) if j.bounds else None, "failing": j.failing}
            for j in (judge(spec, m, history, window_end) for m in measure(result, spec))]
