"""Alerting's state in ClickHouse (collector/store/clickhouse/alerts.py, availability.py) on the
stand-in: what one collector writes another reads, an evaluation commits once, a crash mid-commit is
redone with what was decided first (not with a new judgement), and a recorded delivery attempt is
never undone by the entry being written again."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

import pytest
from chdb_stand_in import StandInConnection
from store_helpers import eventually, with_state_tables

from collector.store.alerts import DELIVERED, PENDING, Delivery, Evaluation, Instance, Value, now
from collector.store.clickhouse.alerts import AlertState
from collector.store.clickhouse.availability import AvailabilityState

SPEC = {"query": "requests", "frequency": 60, "window": 60, "action_groups": ["ops"]}


@pytest.fixture
def pair(clickhouse_server):
    """Two collectors' views of one store (two connections, as two processes have)."""
    database = f"alerts_{uuid.uuid4().hex[:8]}"
    with_state_tables(StandInConnection(clickhouse_server, database))
    return AlertState(StandInConnection(clickhouse_server, database)), AlertState(StandInConnection(clickhouse_server, database))


def _evaluation(window_end: datetime, value: float, key: str = "k1") -> Evaluation:
    alert_id = f"alert-{value}"
    instance = Instance("svc", "r", "", {}, "Fired", alert_id, window_end, None, value, 1.0, [True])
    delivery = Delivery(key, "svc", "r", alert_id, "Fired", "ops/webhook/0", {"body": {"value": value}, "target": {}})
    return Evaluation("svc", "r", window_end, [instance], [Value("", window_end, value)], [delivery])



def test_scaleout_rules_and_groups_made_on_one_collector_are_read_on_the_other(pair):
    first, second = pair
    first.save_action_group("svc", "ops", {"name": "ops", "webhooks": [{"url": "http://x/hook"}]})
    first.save_rule("svc", "r", SPEC, reset=True)
    assert [r.name for r in second.rules("svc")] == ["r"] and second.rule("svc", "r").spec == SPEC
    assert second.action_groups("svc") == {"ops": {"name": "ops", "webhooks": [{"url": "http://x/hook"}]}}
    until = now() + timedelta(hours=1)
    second.mute_rule("svc", "r", until)
    assert second.rule("svc", "r").muted_until is not None  # its own write, read at once
    muted = eventually(lambda: first.rule("svc", "r").muted_until)
    assert abs((muted - until).total_seconds()) < 1e-3
    second.delete_rule("svc", "r")
    second.delete_action_group("svc", "ops")
    assert eventually(lambda: first.rules() == []) and first.action_groups("svc") == {}


def test_scaleout_an_evaluation_commits_once_and_a_reset_starts_afresh(pair):
    first, second = pair
    first.save_rule("svc", "r", SPEC, reset=True)
    end = now().replace(second=0, microsecond=0)
    assert first.commit_evaluation(_evaluation(end, 5.0))
    assert not second.commit_evaluation(_evaluation(end, 5.0))  # the same window, from the other collector
    rule = second.rule("svc", "r")
    assert rule.watermark == end and rule.evaluations == 1
    assert [(i.state, i.value) for i in second.instances("svc")] == [("Fired", 5.0)]
    assert [v.value for v in second.values("svc", "r", end - timedelta(days=1))] == [5.0]
    assert [(d.key, d.status) for d in second.due_deliveries()] == [("k1", PENDING)]
    first.save_rule("svc", "r", {**SPEC, "query": "requests | take 1"}, reset=True)
    assert eventually(lambda: second.rule("svc", "r").spec["query"] == "requests | take 1")
    rule = second.rule("svc", "r")
    assert rule.watermark is None and rule.evaluations == 0
    assert second.instances("svc") == [] and second.values("svc", "r", end - timedelta(days=1)) == []


def test_scaleout_a_commit_cut_short_is_redone_with_what_was_decided_first(pair, monkeypatch):
    first, second = pair
    first.save_rule("svc", "r", SPEC, reset=True)
    end = now().replace(second=0, microsecond=0)

    def crash(*args, **kwargs):
        raise ConnectionError("the collector died before its watermark was written")

    monkeypatch.setattr(first, "_put_progress", crash)
    with pytest.raises(ConnectionError):
        first.commit_evaluation(_evaluation(end, 5.0, key="decided"))
    # the next holder judges the window again and (late rows, say) sees another value: what was
    # decided first is what commits, its notification included, and nothing of the new judgement
    assert second.commit_evaluation(_evaluation(end, 9.0, key="second-opinion"))
    assert [i.value for i in second.instances("svc")] == [5.0]
    assert [d.key for d in second.deliveries("svc")] == ["decided"]
    assert second.rule("svc", "r").watermark == end


def test_scaleout_a_recorded_attempt_is_not_undone_by_the_entry_written_again(pair):
    first, second = pair
    first.save_rule("svc", "r", SPEC, reset=True)
    end = now().replace(second=0, microsecond=0)
    assert first.commit_evaluation(_evaluation(end, 5.0))
    first.record_attempt("k1", DELIVERED, 1, None, now()).result()
    first._apply(first._rule_row("svc", "r")[3], _evaluation(end, 5.0), first._progress("svc", "r", "x"))
    assert [(d.status, d.attempts) for d in second.deliveries("svc")] == [(DELIVERED, 1)]
    assert second.due_deliveries() == []


def test_scaleout_availability_tests_are_shared_and_a_saved_test_runs_afresh(clickhouse_server):
    database = f"avail_{uuid.uuid4().hex[:8]}"
    with_state_tables(StandInConnection(clickhouse_server, database))
    first = AvailabilityState(StandInConnection(clickhouse_server, database), writer=None)
    second = AvailabilityState(StandInConnection(clickhouse_server, database), writer=None)
    first.save("svc", "probe", {"url": "http://127.0.0.1/"})
    assert [(t.name, t.spec, t.last_run) for t in second.tests("svc")] == [("probe", {"url": "http://127.0.0.1/"}, None)]
    second.delete("svc", "probe")
    assert first.tests() == []
