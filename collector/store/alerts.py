"""What alerting keeps in the store: rules, action groups, alert instances and their state, the
measured value of each instance per evaluated window (the history dynamic thresholds learn from),
and the delivery ledger.

One evaluation of a rule is one commit (`commit_evaluation`): the rule's watermark (the last window
end evaluated), the instances' new states, the window's values and the notifications those state
changes owe, all together. The watermark is checked inside that commit, so a (rule, window end) is
evaluated once however often it is attempted, and a notification exists in the ledger exactly when
the state change that owes it was committed: a crash before the commit redoes the evaluation with the
same result, a crash after it finds the ledger rows and sends what is still pending.

Specs (a rule's query and condition, an action group's receivers) are JSON documents validated by the
alerts package; this module stores and finds them. Upserts are delete + insert (no primary keys):
group commit may touch one row twice in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import duckdb
import orjson
import pyarrow as pa

from collector.store.changes import Changes, Memo
from collector.store.writer import Writer

DDL = (
    """CREATE TABLE IF NOT EXISTS alert_rules (
        service VARCHAR NOT NULL, name VARCHAR NOT NULL, spec JSON NOT NULL,
        watermark TIMESTAMP, last_error VARCHAR, last_error_at TIMESTAMP, evaluations BIGINT NOT NULL DEFAULT 0,
        muted_until TIMESTAMP, created_at TIMESTAMP NOT NULL, updated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_action_groups (
        service VARCHAR NOT NULL, name VARCHAR NOT NULL, spec JSON NOT NULL, updated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_instances (
        service VARCHAR NOT NULL, rule VARCHAR NOT NULL, dims_key VARCHAR NOT NULL, dimensions JSON NOT NULL,
        state VARCHAR NOT NULL, alert_id VARCHAR, fired_at TIMESTAMP, resolved_at TIMESTAMP, value DOUBLE,
        threshold DOUBLE, history JSON NOT NULL, clear_since TIMESTAMP, updated_at TIMESTAMP NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS alert_values (
        service VARCHAR NOT NULL, rule VARCHAR NOT NULL, dims_key VARCHAR NOT NULL, window_end TIMESTAMP NOT NULL,
        value DOUBLE, lower DOUBLE, upper DOUBLE)""",
    """CREATE TABLE IF NOT EXISTS alert_deliveries (
        key VARCHAR NOT NULL, service VARCHAR NOT NULL, rule VARCHAR NOT NULL, alert_id VARCHAR NOT NULL,
        condition VARCHAR NOT NULL, receiver VARCHAR NOT NULL, payload JSON NOT NULL, status VARCHAR NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, last_error VARCHAR, created_at TIMESTAMP NOT NULL,
        updated_at TIMESTAMP NOT NULL, next_attempt_at TIMESTAMP NOT NULL)""",
)

VALUES_KEPT = timedelta(days=28)
"""How long per-window values are kept: four weeks of history for dynamic thresholds."""
DELIVERIES_KEPT = timedelta(days=30)
"""How long the ledger keeps a settled (delivered, failed, muted) notification."""

PENDING, DELIVERED, FAILED, MUTED = "pending", "delivered", "failed", "muted"


def now() -> datetime:
    """Naive UTC, as the store keeps time."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class Rule:
    service: str
    name: str
    spec: dict
    watermark: datetime | None = None
    last_error: str | None = None
    last_error_at: datetime | None = None
    evaluations: int = 0
    muted_until: datetime | None = None


@dataclass
class Instance:
    """One alert instance: a rule's dimension combination and its state ('Fired' or 'Resolved')."""

    service: str
    rule: str
    dims_key: str
    dimensions: dict
    state: str = "Resolved"
    alert_id: str | None = None
    fired_at: datetime | None = None
    resolved_at: datetime | None = None
    value: float | None = None
    threshold: float | None = None
    history: list[bool] = field(default_factory=list)
    clear_since: datetime | None = None


@dataclass(frozen=True)
class Value:
    dims_key: str
    window_end: datetime
    value: float | None
    lower: float | None = None
    upper: float | None = None


@dataclass(frozen=True)
class Delivery:
    key: str
    service: str
    rule: str
    alert_id: str
    condition: str
    receiver: str
    payload: dict
    status: str = PENDING
    attempts: int = 0
    last_error: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


@dataclass(frozen=True)
class Evaluation:
    """What one evaluation of (rule, window_end) commits."""

    service: str
    rule: str
    window_end: datetime
    instances: list[Instance]
    values: list[Value]
    deliveries: list[Delivery]
    error: str | None = None


class AlertState:
    """The store's side of alerting: reads open a cursor each, writes go through the single writer.
    What the scheduler and the delivery loop poll (every rule; the deliveries due) is kept between
    writes (changes.py): an idle look costs no query."""

    def __init__(self, reader: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], writer: Writer):
        self._reader = reader
        self._writer = writer
        self._changes = Changes()
        self._all_rules: Memo[list[Rule]] = Memo(self._changes, now)
        self._due: Memo[list[Delivery]] = Memo(self._changes, now)

    def _read(self, sql: str, params: list) -> list[tuple]:
        with self._reader() as cursor:
            return cursor.execute(sql, params).fetchall()

    def _commit(self, operation: Callable[[duckdb.DuckDBPyConnection], object]) -> object:
        return self._changes.track(self._writer.write(operation=operation)).result()

    # rules --------------------------------------------------------------------------------------

    def rules(self, service: str | None = None) -> list[Rule]:
        if service is None:
            return list(self._all_rules.get(lambda: (self._rules(None), None)))
        return self._rules(service)

    def _rules(self, service: str | None) -> list[Rule]:
        rows = self._read("SELECT service, name, spec, watermark, last_error, last_error_at, evaluations, muted_until "
                          "FROM alert_rules WHERE ?::VARCHAR IS NULL OR service = ? ORDER BY service, name", [service, service])
        return [Rule(r[0], r[1], orjson.loads(r[2]), *r[3:]) for r in rows]

    def rule(self, service: str, name: str) -> Rule | None:
        return next((r for r in self.rules(service) if r.name == name), None)

    def save_rule(self, service: str, name: str, spec: dict, reset: bool) -> None:
        """Create or replace a rule's spec; `reset` starts its evaluation afresh (watermark, errors,
        instances and values dropped), as a changed query or condition needs."""
        def operation(con: duckdb.DuckDBPyConnection) -> None:
            old = con.execute("SELECT created_at, watermark, muted_until, evaluations FROM alert_rules "
                              "WHERE service = ? AND name = ?", [service, name]).fetchone()
            created, watermark, muted, evaluations = old if old else (now(), None, None, 0)
            if reset:
                watermark, evaluations = None, 0
                _delete_rule_state(con, service, name)
            con.execute("DELETE FROM alert_rules WHERE service = ? AND name = ?", [service, name])
            con.execute("INSERT INTO alert_rules VALUES (?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
                        [service, name, orjson.dumps(spec).decode(), watermark, evaluations, muted, created, now()])
        self._commit(operation)

    def delete_rule(self, service: str, name: str) -> None:
        def operation(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("DELETE FROM alert_rules WHERE service = ? AND name = ?", [service, name])
            _delete_rule_state(con, service, name)
        self._commit(operation)

    def mute_rule(self, service: str, name: str, until: datetime | None) -> None:
        self._commit(lambda con: con.execute("UPDATE alert_rules SET muted_until = ? WHERE service = ? AND name = ?",
                                             [until, service, name]))

    def record_error(self, service: str, name: str, error: str) -> None:
        """An evaluation failed: say so on the rule (the watermark stays, the window is retried)."""
        self._commit(lambda con: con.execute(
            "UPDATE alert_rules SET last_error = ?, last_error_at = ? WHERE service = ? AND name = ?",
            [error[:2000], now(), service, name]))

    # action groups ------------------------------------------------------------------------------

    def action_groups(self, service: str) -> dict[str, dict]:
        rows = self._read("SELECT name, spec FROM alert_action_groups WHERE service = ? ORDER BY name", [service])
        return {name: orjson.loads(spec) for name, spec in rows}

    def save_action_group(self, service: str, name: str, spec: dict) -> None:
        def operation(con: duckdb.DuckDBPyConnection) -> None:
            con.execute("DELETE FROM alert_action_groups WHERE service = ? AND name = ?", [service, name])
            con.execute("INSERT INTO alert_action_groups VALUES (?, ?, ?, ?)",
                        [service, name, orjson.dumps(spec).decode(), now()])
        self._commit(operation)

    def delete_action_group(self, service: str, name: str) -> None:
        self._commit(lambda con: con.execute("DELETE FROM alert_action_groups WHERE service = ? AND name = ?",
                                             [service, name]))

    # instances and values -----------------------------------------------------------------------

    def instances(self, service: str | None = None, rule: str | None = None) -> list[Instance]:
        rows = self._read(
            "SELECT service, rule, dims_key, dimensions, state, alert_id, fired_at, resolved_at, value, threshold, "
            "history, clear_since FROM alert_instances WHERE (?::VARCHAR IS NULL OR service = ?) AND (?::VARCHAR IS NULL OR rule = ?) "
            "ORDER BY coalesce(fired_at, updated_at) DESC", [service, service, rule, rule])
        return [Instance(r[0], r[1], r[2], orjson.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9],
                         orjson.loads(r[10]), r[11]) for r in rows]

    def values(self, service: str, rule: str, since: datetime) -> list[Value]:
        """The rule's per-window values since `since`, oldest first."""
        rows = self._read("SELECT dims_key, window_end, value, lower, upper FROM alert_values WHERE service = ? "
                          "AND rule = ? AND window_end >= ? ORDER BY window_end", [service, rule, since])
        return [Value(*row) for row in rows]

    def add_values(self, service: str, rule: str, values: list[Value]) -> None:
        """History without state (a dynamic rule's backfill of past windows)."""
        self._commit(lambda con: _insert_values(con, service, rule, values))

    def commit_evaluation(self, evaluation: Evaluation) -> bool:
        """Commit one evaluation (see the module doc); False, committing nothing, when the rule is gone
        or its watermark already reached this window end."""
        return bool(self._commit(lambda con: _commit_evaluation(con, evaluation)))

    # deliveries ---------------------------------------------------------------------------------

    def due_deliveries(self, limit: int = 100) -> list[Delivery]:
        """The pending deliveries whose next attempt is due, oldest first. None due: none until the
        earliest pending one's next attempt or the next write, so the polls before are not queries."""
        return list(self._due.get(lambda: self._due_deliveries(limit)))

    def _due_deliveries(self, limit: int) -> tuple[list[Delivery], datetime | None]:
        at = now()
        rows = self._read(
            "SELECT key, service, rule, alert_id, condition, receiver, payload, status, attempts, last_error, "
            "created_at, updated_at FROM alert_deliveries WHERE status = ? AND next_attempt_at <= ? "
            "ORDER BY created_at LIMIT ?", [PENDING, at, limit])
        if rows:
            return [_delivery(row) for row in rows], at
        (earliest,), = self._read("SELECT min(next_attempt_at) FROM alert_deliveries WHERE status = ?", [PENDING])
        return [], earliest

    def deliveries(self, service: str, rule: str | None = None, limit: int = 200) -> list[Delivery]:
        rows = self._read(
            "SELECT key, service, rule, alert_id, condition, receiver, payload, status, attempts, last_error, "
            "created_at, updated_at FROM alert_deliveries WHERE service = ? AND (?::VARCHAR IS NULL OR rule = ?) "
            "ORDER BY created_at DESC LIMIT ?", [service, rule, rule, limit])
        return [_delivery(row) for row in rows]

    def record_attempt(self, key: str, status: str, attempts: int, error: str | None, next_at: datetime) -> Future:
        return self._changes.track(self._writer.write(operation=lambda con: con.execute(
            "UPDATE alert_deliveries SET status = ?, attempts = ?, last_error = ?, updated_at = ?, next_attempt_at = ? "
            "WHERE key = ?", [status, attempts, error and error[:2000], now(), next_at, key])))


def _delivery(row: tuple) -> Delivery:
    return Delivery(row[0], row[1], row[2], row[3], row[4], row[5], orjson.loads(row[6]), *row[7:])


def _delete_rule_state(con: duckdb.DuckDBPyConnection, service: str, rule: str) -> None:
    for table in ("alert_instances", "alert_values"):
        con.execute(f"DELETE FROM {table} WHERE service = ? AND rule = ?", [service, rule])


def _insert_values(con: duckdb.DuckDBPyConnection, service: str, rule: str, values: list[Value]) -> None:
    if values:
        incoming = pa.table({  # noqa: F841 (read by DuckDB, by name, below)
            "dims_key": [v.dims_key for v in values], "window_end": [v.window_end for v in values],
            "value": pa.array([v.value for v in values], pa.float64()),
            "lower": pa.array([v.lower for v in values], pa.float64()),
            "upper": pa.array([v.upper for v in values], pa.float64())})
        con.execute("INSERT INTO alert_values SELECT ?, ?, dims_key, window_end, value, lower, upper FROM incoming",
                    [service, rule])
    con.execute("DELETE FROM alert_values WHERE service = ? AND rule = ? AND window_end < ?",
                [service, rule, now() - VALUES_KEPT])


def _commit_evaluation(con: duckdb.DuckDBPyConnection, evaluation: Evaluation) -> bool:
    e = evaluation
    found = con.execute("SELECT watermark FROM alert_rules WHERE service = ? AND name = ?", [e.service, e.rule]).fetchone()
    if found is None or (found[0] is not None and found[0] >= e.window_end):
        return False
    con.execute("UPDATE alert_rules SET watermark = ?, evaluations = evaluations + 1, last_error = ?, "
                "last_error_at = CASE WHEN ?::VARCHAR IS NULL THEN last_error_at ELSE ? END WHERE service = ? AND name = ?",
                [e.window_end, e.error, e.error, now(), e.service, e.rule])
    for instance in e.instances:
        con.execute("DELETE FROM alert_instances WHERE service = ? AND rule = ? AND dims_key = ?",
                    [e.service, e.rule, instance.dims_key])
        con.execute("INSERT INTO alert_instances VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", [
            e.service, e.rule, instance.dims_key, orjson.dumps(instance.dimensions).decode(), instance.state,
            instance.alert_id, instance.fired_at, instance.resolved_at, instance.value, instance.threshold,
            orjson.dumps(instance.history).decode(), instance.clear_since, now()])
    _insert_values(con, e.service, e.rule, e.values)
    con.execute("DELETE FROM alert_deliveries WHERE service = ? AND rule = ? AND status <> ? AND updated_at < ?",
                [e.service, e.rule, PENDING, now() - DELIVERIES_KEPT])
    for d in e.deliveries:
        con.execute("INSERT INTO alert_deliveries SELECT ?, ?, ?, ?, ?, ?, ?, ?, 0, NULL, ?, ?, ? "
                    "WHERE NOT EXISTS (SELECT 1 FROM alert_deliveries WHERE key = ?)",
                    [d.key, d.service, d.rule, d.alert_id, d.condition, d.receiver, orjson.dumps(d.payload).decode(),
                     d.status, now(), now(), now(), d.key])
    return True
