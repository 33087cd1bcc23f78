"""The rules of evaluation as pure functions: which windows a rule owes (catching up bounded and in
order), N failing periods out of M, the resolve period."""

from __future__ import annotations

from datetime import datetime, timedelta

from alerts.config import AlertsConfig
from alerts.evaluate import Judged, Measured, step
from alerts.scheduler import due_windows
from collector.store.alerts import Rule

T0 = datetime(2026, 12, 1, 12, 0, 0)
SPEC = {"frequency": 60, "evaluation_periods": 3, "failing_periods": 2, "resolve_after": 120}


def test_a_new_rule_starts_at_the_latest_window_and_a_down_collector_catches_up_bounded_in_order():
    config = AlertsConfig(grace_s=5, catchup_windows=10)
    assert due_windows(Rule("s", "r", SPEC), T0 + timedelta(seconds=30), config) == [T0]
    assert due_windows(Rule("s", "r", SPEC, watermark=T0), T0 + timedelta(seconds=64), config) == []
    assert due_windows(Rule("s", "r", SPEC, watermark=T0), T0 + timedelta(seconds=65), config) == [T0 + timedelta(minutes=1)]
    after_an_hour = due_windows(Rule("s", "r", SPEC, watermark=T0), T0 + timedelta(hours=1, seconds=10), config)
    assert after_an_hour == [T0 + timedelta(minutes=m) for m in range(51, 61)]  # the newest 10, oldest first


def _run(verdicts: list[bool]) -> list[str]:
    """The instance's state after each window with these verdicts."""
    instance, states = None, []
    rule = Rule("s", "r", SPEC)
    for index, failing in enumerate(verdicts):
        verdict = Judged(Measured("", {}, 1.0 if failing else 0.0), 0.5, None, failing)
        instance, _ = step(SPEC, instance, rule, verdict, T0 + timedelta(minutes=index))
        states.append(instance.state)
    return states


def test_two_failing_periods_out_of_three_fire_and_two_clear_minutes_resolve():
    assert _run([True, False, False, True]) == ["Resolved"] * 4  # never 2 of the last 3
    assert _run([True, False, True]) == ["Resolved", "Resolved", "Fired"]
    # Fired at 2; clear (fewer than 2 of the last 3) from minute 4; resolved 2 minutes later, at 6.
    assert _run([True, True, True, False, False, False, False]) == (
        ["Resolved", "Fired", "Fired", "Fired", "Fired", "Fired", "Resolved"])


def test_a_fired_instance_keeps_its_alert_id_until_it_resolves():
    rule, instance, ids = Rule("s", "r", SPEC), None, []
    for index, failing in enumerate([True, True, True, True]):
        instance, _ = step(SPEC, instance, rule, Judged(Measured("", {}, 1.0), 0.5, None, failing), T0 + timedelta(minutes=index))
        ids.append(instance.alert_id)
    assert ids[0] is None and len(set(ids[1:])) == 1
