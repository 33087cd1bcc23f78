"""The pollers' reads kept between writes (collector/store/changes.py) answer what a query would:
a rule, a test or a delivery written through the store shows at the next look, and a delivery
whose retry is due shows once its time comes, with no write in between. On a real DuckDB store."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from collector.store.alerts import DELIVERED, PENDING, Delivery, Evaluation, now
from collector.store.database import Store


def _deliveries(key: str) -> Evaluation:
    delivery = Delivery(key, "svc", "rule", "alert-1", "Fired", "ops", {"target": {"kind": "webhook"}})
    return Evaluation("svc", "rule", now(), [], [], [delivery])


def eventually(check, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = check()
        if answer:
            return answer
        time.sleep(0.05)
    raise AssertionError("timed out")


def test_rules_and_deliveries_show_at_the_next_look_and_a_retry_when_due(tmp_path: Path):
    store = Store(tmp_path)
    try:
        alerts = store.alerts
        assert alerts.rules() == [] and alerts.due_deliveries() == []
        alerts.save_rule("svc", "rule", {"frequency": 60}, reset=True)
        assert [r.name for r in alerts.rules()] == ["rule"]
        assert alerts.commit_evaluation(_deliveries("k1"))
        assert alerts.rules()[0].watermark is not None  # the evaluation's write shows too
        assert [d.key for d in alerts.due_deliveries()] == ["k1"]
        retry_at = now() + timedelta(seconds=1)
        alerts.record_attempt("k1", PENDING, 1, "refused", retry_at).result()
        assert alerts.due_deliveries() == []  # not due yet (and kept: no query until then)
        due = eventually(alerts.due_deliveries)  # no write in between: the clock makes it due
        assert [d.key for d in due] == ["k1"] and now() >= retry_at
        alerts.record_attempt("k1", DELIVERED, 2, None, now()).result()
        assert alerts.due_deliveries() == []
        alerts.delete_rule("svc", "rule")
        assert alerts.rules() == []
    finally:
        store.close()


def test_availability_tests_show_at_the_next_look(tmp_path: Path):
    store = Store(tmp_path)
    try:
        tests = store.availability
        assert tests.tests() == []
        tests.save("svc", "home", {"url": "https://example.invalid/", "frequency": 60})
        assert [t.name for t in tests.tests()] == ["home"]
        tests.delete("svc", "home")
        assert tests.tests() == []
    finally:
        store.close()
