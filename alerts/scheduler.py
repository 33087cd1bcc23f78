"""The rule scheduler: one thread that finds, each second, the windows each enabled rule owes, and a
small pool that evaluates them, one rule at a time per rule, its windows in order.

Windows end on multiples of the rule's frequency (UTC epoch), and one ending at E is evaluated once
E + grace has passed. A new rule starts at the latest window that ended. After a pause (a collector
that was down, a slow query), the rule owes every window since its watermark: the newest
`catchup_windows` of them are evaluated, oldest first, and the older ones are skipped, so a
collector down for an hour catches up in seconds, notifies each state change once (instances are
stateful), and never floods. A failing evaluation (the query's error or timeout) is recorded on the
rule and its window counts as evaluated (the instances keep their state); the next window tries
again, and the error clears once one succeeds. Nothing a rule does stops the others.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from functools import partial

from alerts import backfill
from alerts.config import AlertsConfig
from alerts.evaluate import evaluate
from alerts.ticking import Ticking, Work
from collector.store.alerts import Rule, now
from collector.store.database import Store

log = logging.getLogger(__name__)

TICK_S = 1.0
_EPOCH = datetime(1970, 1, 1)


def due_windows(rule: Rule, at: datetime, config: AlertsConfig) -> list[datetime]:
    """The window ends `rule` owes at `at`, oldest first (see the module doc)."""
    step = timedelta(seconds=rule.spec["frequency"])
    ready = at - timedelta(seconds=config.grace_s)
    latest = _EPOCH + ((ready - _EPOCH) // step) * step
    if rule.watermark is None:
        return [latest]
    missed = int((latest - rule.watermark) / step)
    if missed <= 0:
        return []
    first = max(1, missed - config.catchup_windows + 1)
    return [rule.watermark + step * k for k in range(first, missed + 1)]


class Scheduler(Ticking):
    def __init__(self, store: Store, config: AlertsConfig, services: Callable[[], set[str]]):
        super().__init__("alert-scheduler", config.workers, TICK_S)
        self.store = store
        self.config = config
        self._services = services
        """The services that exist now: the rules of a deleted service are left alone."""
        self.lag_s = 0.0
        """How late the last window was evaluated, past its end + grace (the scheduler's lag); the
        first window of a new rule, due before the rule existed, does not count."""
        self.max_lag_s = 0.0
        self.evaluated = 0

    def status(self) -> dict:
        return {"lag_s": round(self.lag_s, 3), "max_lag_s": round(self.max_lag_s, 3), "evaluated": self.evaluated,
                "running": self.running(), "active": self.active()}

    def due(self) -> Iterable[Work]:
        at, services = now(), self._services()
        for rule in self.store.alerts.rules():
            if not rule.spec.get("enabled", True) or rule.service not in services:
                continue
            windows = due_windows(rule, at, self.config)
            if windows:
                yield (rule.service, rule.name), partial(self._evaluate_windows, rule, windows)

    def _evaluate_windows(self, rule: Rule, windows: list[datetime]) -> None:
        try:
            if rule.spec.get("dynamic") and rule.watermark is None:
                self.backfill(rule, windows[0])
            for window_end in windows:
                if self._stop.is_set():
                    return
                self._evaluate_one(rule, window_end)
                rule = self.store.alerts.rule(rule.service, rule.name) or rule
        except Exception as error:  # never let one rule take down the pool's thread
            log.exception("evaluating %s/%s failed", rule.service, rule.name)
            self.store.alerts.record_error(rule.service, rule.name, f"internal error: {error}")

    def _evaluate_one(self, rule: Rule, window_end: datetime) -> None:
        if rule.watermark is not None:  # a new rule's first window was due before the rule existed
            lag = (now() - window_end).total_seconds() - self.config.grace_s
            self.lag_s, self.max_lag_s = lag, max(self.max_lag_s, lag)
        evaluation = evaluate(self.store, rule, window_end, min(self.config.query_timeout_s, rule.spec["frequency"]),
                              self.config.dashboard_url)
        # A failed evaluation commits too: its error goes on the rule, its window counts as done and
        # the instances keep their state, so a broken query runs once per window, not on every pass.
        # A collector that lost the alerts lease while the query ran leaves the window to the next holder.
        if self.active() and self.store.alerts.commit_evaluation(evaluation):
            self.evaluated += 1

    def backfill(self, rule: Rule, before: datetime) -> None:
        """A new dynamic rule's history: its measure over up to LEARN_DAYS of past windows (at most
        one every 15 minutes), from the telemetry already stored, in one binned query (backfill.py)."""
        values = backfill.backfill(self.store, rule, before, self.config.query_timeout_s, self._stop.is_set)
        self.store.alerts.add_values(rule.service, rule.name, values)
