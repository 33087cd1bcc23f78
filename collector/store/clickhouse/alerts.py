"""Alerting's state on ClickHouse: store/alerts.py's interface (same methods, same dataclasses),
shared by N collectors, so a rule or action group made through one collector is known to every
other, and whichever collector holds the alerts lease (alerts/extension.py, leases.py) evaluates
and delivers from where the last holder stopped.

ClickHouse has no transactions, no unique keys and no UPDATE in place, so the tables
(alert_tables.py) split what users change from what the evaluator writes:
- `alert_rules`, `alert_action_groups`: ReplacingMergeTree(version, is_deleted) keyed by (service,
  name), read with FINAL; each change a row, the latest wins; a delete a row with is_deleted = 1.
  A rule row carries a `generation`: a change that starts the rule afresh (`reset`) gives it a new
  one, and every piece of evaluation state below is keyed by it, so the old generation's state is
  simply no longer read (nothing to delete).
- `alert_progress`: the watermark (the last window end evaluated), the evaluation count and the
  last error of (rule, generation), a ReplacingMergeTree whose version is (lease epoch, time).
- `alert_instances` (the version is the window end that produced the row: a later window's state
  wins), `alert_values` (keyed by window end; kept 28 days by TTL), `alert_deliveries` (keyed by the
  idempotency key; the version is (attempts, time), so a status recorded after an attempt is never
  overwritten by the entry being inserted again).
- `alert_evaluations`: the intent log, one row per decided (rule, generation, window end) holding
  the whole Evaluation (instances, values, notifications), stamped by the server (`inserted`).

How `commit_evaluation` keeps store/alerts.py's guarantees without a transaction:
1. The window end is checked against the watermark (False if already evaluated).
2. The decision is the intent row. If an intent for a later window than the watermark exists (an
   earlier attempt, by this collector before a crash or by the previous lease holder, inserted it
   and did not finish), that intent is applied, not the evaluation in hand: a redo applies what was
   decided first, with the same instances, alert ids and idempotency keys, even if late telemetry
   would now judge the window differently. If that intent is for an earlier window than the one in
   hand, the one in hand was judged on the state before it: it is dropped (False) and its window
   judged again on the next pass. Otherwise the evaluation is inserted as the intent and read back;
   the first one the server stamped for the window wins (two holders racing in a lease handover
   both apply the same one).
3. Applying it inserts the instances, values and ledger entries (each re-insert idempotent: the same
   keys, versions that cannot undo later progress), then the progress row: the watermark, last.
So a notification is in the ledger only once its evaluation is decided, every decided evaluation is
applied in full before a later window's judgement of the rule can commit, and a crash at any point
redoes the same writes. Deliveries are at least once with their idempotency key, as on DuckDB.

Fencing. Progress rows carry the lease epoch (`fence`, set by the extension) in the high bits of
their version, so a holder paused past its lease cannot move a watermark back over its successor's.
The lease makes one collector the writer of everything but the user-changed tables. Reads of the
rule list are kept CACHE_S (2 s) and dropped at each of this collector's own writes (the holder's
commits included, so its scheduler always sees its own watermarks): a rule made or changed on
another collector is read within 2 s. A stale read costs nothing worse: `commit_evaluation` reads
the rule and watermark afresh.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from datetime import UTC, datetime, timedelta
from typing import Any, overload

import orjson

from collector.store.alerts import PENDING, Delivery, Evaluation, Instance, Rule, Value, now
from collector.store.clickhouse import control

_EPOCH = datetime(1970, 1, 1)
CACHE_S = 2.0
"""How stale a collector's list of rules may be (a rule made on another collector is read within this)."""
_INSTANCE_COLUMNS = ("service", "rule", "generation", "dims_key", "dimensions", "state", "alert_id", "fired_at",
                     "resolved_at", "value", "threshold", "history", "clear_since", "updated_at", "version")
_DELIVERY_COLUMNS = ("key", "service", "rule", "alert_id", "condition", "receiver", "payload", "status", "attempts",
                     "last_error", "created_at", "updated_at", "next_attempt_at", "version")
_PROGRESS_COLUMNS = ("service", "rule", "generation", "watermark", "evaluations", "last_error", "last_error_at",
                     "version")


def _micros(at: datetime | None = None) -> int:
    """Microseconds since the epoch of a naive UTC time (now without one)."""
    return time.time_ns() // 1000 if at is None else (at - _EPOCH) // timedelta(microseconds=1)


def _utc(at: datetime | None) -> datetime | None:
    """A naive UTC time as clickhouse-connect inserts it faithfully (aware: naive ones it takes as local)."""
    return None if at is None else at.replace(tzinfo=UTC)


@overload
def _naive(at: datetime) -> datetime: ...
@overload
def _naive(at: datetime | None) -> datetime | None: ...
def _naive(at: datetime | None) -> datetime | None:
    """A time read back, as the store keeps time (naive UTC)."""
    return None if at is None else at.astimezone(UTC).replace(tzinfo=None) if at.tzinfo else at


class AlertState:
    """store/alerts.py's AlertState over ClickHouse (see the module docstring)."""

    def __init__(self, connection: control.Connection) -> None:
        self._connection = connection
        self._rules = Cached(self._read_rules)
        self._deliveries_quiet_until = 0.0
        """No pending delivery is due before this (monotonic): see `due_deliveries`."""
        self.fence: Callable[[], int] = lambda: 0
        """The epoch of the alerts lease this collector holds (progress rows carry it); 0 without one."""

    # rules --------------------------------------------------------------------------------------

    def rules(self, service: str | None = None) -> list[Rule]:
        """Every rule (of `service`), as read at most CACHE_S ago or since this collector's last write."""
        return [rule for rule in self._rules.get() if service is None or rule.service == service]

    def _read_rules(self) -> list[Rule]:
        progress = {(r[0], r[1], r[2]): r[3:] for r in self._query(
            "SELECT service, rule, generation, watermark, evaluations, last_error, last_error_at "
            f"FROM {self._table('alert_progress')} FINAL", {})}
        out = []
        for row in self._rule_rows(None):
            watermark, evaluations, error, error_at = progress.get((row[0], row[1], row[3]), (None, 0, None, None))
            out.append(Rule(row[0], row[1], orjson.loads(row[2]), _naive(watermark), error, _naive(error_at),
                            int(evaluations), _naive(row[4])))
        return out

    def rule(self, service: str, name: str) -> Rule | None:
        return next((r for r in self.rules(service) if r.name == name), None)

    def save_rule(self, service: str, name: str, spec: dict, reset: bool) -> None:
        """Create or replace a rule's spec; `reset` (or a new rule) starts a new generation: no
        watermark, errors, instances or values."""
        old = self._rule_row(service, name)
        generation = uuid.uuid4().hex if reset or old is None else old[3]
        muted, created = (old[4], old[5]) if old else (None, now())
        self._put_rule(service, name, orjson.dumps(spec).decode(), generation, muted, created)
        self._rules.clear()

    def import_rule(self, rule: Rule, instances: list[Instance], values: list[Value]) -> bool:
        """A rule moved from a DuckDB store (`insights store copy`): its spec, mute, progress, the
        current state of its instances and its per-window values, as one new generation; False,
        writing nothing, when the service has a rule of that name already (a second copy)."""
        if self._rule_row(rule.service, rule.name) is not None:
            return False
        generation, version = uuid.uuid4().hex, _micros(rule.watermark) if rule.watermark else 1
        rows = [[rule.service, rule.name, generation, i.dims_key, orjson.dumps(i.dimensions).decode(), i.state,
                 i.alert_id, _utc(i.fired_at), _utc(i.resolved_at), i.value, i.threshold,
                 orjson.dumps(i.history).decode(), _utc(i.clear_since), _utc(now()), version] for i in instances]
        if rows:
            self._write(lambda: self._insert("alert_instances", _INSTANCE_COLUMNS, rows))
        if values:
            self._write(lambda: self._insert_values(rule.service, rule.name, generation, values))
        self._write(lambda: self._put_progress(rule.service, rule.name, generation, rule.watermark, rule.evaluations,
                                               rule.last_error, rule.last_error_at))
        self._put_rule(rule.service, rule.name, orjson.dumps(rule.spec).decode(), generation, rule.muted_until, now())
        self._rules.clear()
        return True

    def delete_rule(self, service: str, name: str) -> None:
        self._put_rule(service, name, "{}", "", None, now(), deleted=True)
        self._rules.clear()

    def mute_rule(self, service: str, name: str, until: datetime | None) -> None:
        old = self._rule_row(service, name)
        if old is not None:
            self._put_rule(service, name, old[2], old[3], until, old[5])
            self._rules.clear()

    def record_error(self, service: str, name: str, error: str) -> None:
        """An evaluation failed: say so on the rule (the watermark stays, the window is retried)."""
        row = self._rule_row(service, name)
        if row is None:
            return
        watermark, evaluations, _, _ = self._progress(service, name, row[3])
        self._write(lambda: self._put_progress(service, name, row[3], watermark, evaluations, error[:2000], now()))
        self._rules.clear()

    # action groups ------------------------------------------------------------------------------

    def action_groups(self, service: str) -> dict[str, dict]:
        rows = self._query(f"SELECT name, spec FROM {self._table('alert_action_groups')} FINAL "
                           "WHERE service = {service:String} AND NOT is_deleted ORDER BY name", {"service": service})
        return {name: orjson.loads(spec) for name, spec in rows}

    def save_action_group(self, service: str, name: str, spec: dict) -> None:
        self._put_group(service, name, orjson.dumps(spec).decode(), deleted=False)

    def delete_action_group(self, service: str, name: str) -> None:
        self._put_group(service, name, "{}", deleted=True)

    # instances and values -----------------------------------------------------------------------

    def instances(self, service: str | None = None, rule: str | None = None) -> list[Instance]:
        """The instances of the rules that exist, in their current generation, latest first."""
        generations = {(r[0], r[1]): r[3] for r in self._rule_rows(service)}
        conditions = [c for c, wanted in (("service = {service:String}", service), ("rule = {rule:String}", rule))
                      if wanted is not None]
        condition = f" WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = self._query(f"SELECT {', '.join(_INSTANCE_COLUMNS[:-2])}, updated_at FROM "
                           f"{self._table('alert_instances')} FINAL{condition}", {"service": service, "rule": rule})
        found = [(_instance(row), _naive(row[-1])) for row in rows if generations.get((row[0], row[1])) == row[2]]
        found.sort(key=lambda pair: pair[0].fired_at or pair[1] or _EPOCH, reverse=True)
        return [instance for instance, _ in found]

    def values(self, service: str, rule: str, since: datetime) -> list[Value]:
        """The rule's per-window values since `since`, oldest first."""
        row = self._rule_row(service, rule)
        if row is None:
            return []
        rows = self._query(
            f"SELECT dims_key, window_end, value, lower, upper FROM {self._table('alert_values')} FINAL "
            "WHERE service = {service:String} AND rule = {rule:String} AND generation = {generation:String} "
            "AND window_end >= {since:DateTime64(6, 'UTC')} ORDER BY window_end, dims_key",
            {"service": service, "rule": rule, "generation": row[3], "since": since})
        return [Value(dims_key, _naive(end), value, lower, upper) for dims_key, end, value, lower, upper in rows]

    def add_values(self, service: str, rule: str, values: list[Value]) -> None:
        """History without state (a dynamic rule's backfill of past windows)."""
        row = self._rule_row(service, rule)
        if row is not None and values:
            self._write(lambda: self._insert_values(service, rule, row[3], values))

    def commit_evaluation(self, evaluation: Evaluation) -> bool:
        """Commit one evaluation (see the module docstring); False, committing nothing of it, when the
        rule is gone, its watermark already reached this window end, or an earlier decided window had
        to be applied first (the caller's evaluation was judged on the state before it)."""
        try:
            return self._write(lambda: self._commit_evaluation(evaluation))
        finally:
            self._rules.clear()

    # deliveries ---------------------------------------------------------------------------------

    def due_deliveries(self, limit: int = 100) -> list[Delivery]:
        """The pending entries due now. Only the alerts lease's holder adds entries or schedules retries
        (and it asks this of its own state), so after an answer with none due it asks ClickHouse again
        only once it wrote one, when the next retry is due, or CACHE_S later: an idle collector does not
        poll four times a second."""
        if time.monotonic() < self._deliveries_quiet_until:
            return []
        asked, at = time.monotonic(), now()
        rows = self._query(
            f"SELECT {', '.join(_DELIVERY_COLUMNS[:-2])}, next_attempt_at FROM {self._table('alert_deliveries')} "
            "FINAL WHERE status = {pending:String} AND next_attempt_at <= {soon:DateTime64(6, 'UTC')} "
            "ORDER BY created_at LIMIT {limit:UInt32}",
            {"pending": PENDING, "soon": at + timedelta(seconds=CACHE_S), "limit": limit})
        due = [_delivery(row[:-1]) for row in rows if _naive(row[-1]) <= at]
        if not due:
            soonest = min(((_naive(row[-1]) - at).total_seconds() for row in rows), default=CACHE_S)
            self._deliveries_quiet_until = asked + min(soonest, CACHE_S)
        return due

    def deliveries(self, service: str, rule: str | None = None, limit: int = 200) -> list[Delivery]:
        condition = " AND rule = {rule:String}" if rule is not None else ""
        rows = self._query(
            f"SELECT {', '.join(_DELIVERY_COLUMNS[:-2])} FROM {self._table('alert_deliveries')} FINAL "
            f"WHERE service = {{service:String}}{condition} ORDER BY created_at DESC LIMIT {{limit:UInt32}}",
            {"service": service, "rule": rule, "limit": limit})
        return [_delivery(row) for row in rows]

    def record_attempt(self, key: str, status: str, attempts: int, error: str | None, next_at: datetime) -> Future:
        def record() -> None:
            rows = self._query(f"SELECT {', '.join(_DELIVERY_COLUMNS[:-2])} FROM {self._table('alert_deliveries')} "
                               "FINAL WHERE key = {key:String}", {"key": key})
            if rows:
                old = _delivery(rows[0])
                self._insert_deliveries([Delivery(
                    key, old.service, old.rule, old.alert_id, old.condition, old.receiver, old.payload, status,
                    attempts, error and error[:2000], old.created_at, now())], next_at)
            self._deliveries_quiet_until = 0.0
        return control.submit(record)

    # the commit ---------------------------------------------------------------------------------

    def _commit_evaluation(self, e: Evaluation) -> bool:
        rule = self._rule_row(e.service, e.rule)
        if rule is None:
            return False
        generation = rule[3]
        progress = self._progress(e.service, e.rule, generation)
        watermark = progress[0]
        if watermark is not None and watermark >= e.window_end:
            return False
        decided = self._first_intent(e.service, e.rule, generation, after=watermark)
        if decided is None:
            self._insert_intent(generation, e)
            decided = self._first_intent(e.service, e.rule, generation, after=watermark)
            assert decided is not None, "an intent just inserted is read back"
        self._apply(generation, decided, progress)
        return decided.window_end == e.window_end

    def _first_intent(self, service: str, rule: str, generation: str, after: datetime | None) -> Evaluation | None:
        """The earliest decided window past `after`, as the first intent stamped for it says."""
        rows = self._query(
            f"SELECT argMin(evaluation, (inserted, fence)) FROM {self._table('alert_evaluations')} "
            "WHERE service = {service:String} AND rule = {rule:String} AND generation = {generation:String} "
            "AND window_end > {after:DateTime64(6, 'UTC')} GROUP BY window_end ORDER BY window_end LIMIT 1",
            {"service": service, "rule": rule, "generation": generation, "after": after or _EPOCH})
        return _evaluation(orjson.loads(rows[0][0])) if rows else None

    def _insert_intent(self, generation: str, e: Evaluation) -> None:
        self._insert("alert_evaluations", ("service", "rule", "generation", "window_end", "evaluation", "fence"),
                     [[e.service, e.rule, generation, _utc(e.window_end), orjson.dumps(_evaluation_json(e)).decode(),
                       int(self.fence())]])

    def _apply(self, generation: str, e: Evaluation, progress: tuple) -> None:
        """The decided evaluation's writes, each idempotent, the watermark last."""
        version, at = _micros(e.window_end), now()
        if e.instances:
            self._insert("alert_instances", _INSTANCE_COLUMNS, [[
                e.service, e.rule, generation, i.dims_key, orjson.dumps(i.dimensions).decode(), i.state, i.alert_id,
                _utc(i.fired_at), _utc(i.resolved_at), i.value, i.threshold, orjson.dumps(i.history).decode(),
                _utc(i.clear_since), _utc(at), version] for i in e.instances])
        if e.values:
            self._insert_values(e.service, e.rule, generation, e.values)
        if e.deliveries:
            self._deliveries_quiet_until = 0.0
            self._insert_deliveries([Delivery(d.key, d.service, d.rule, d.alert_id, d.condition, d.receiver, d.payload,
                                              d.status, 0, None, at, at) for d in e.deliveries], at)
        _, evaluations, _, error_at = progress
        self._put_progress(e.service, e.rule, generation, e.window_end, evaluations + 1, e.error,
                           at if e.error else error_at)

    # plumbing -----------------------------------------------------------------------------------

    def _rule_rows(self, service: str | None) -> list[tuple]:
        """(service, name, spec, generation, muted_until, created_at) of the rules that exist."""
        condition = " AND service = {service:String}" if service is not None else ""
        return self._query(f"SELECT service, name, spec, generation, muted_until, created_at FROM "
                           f"{self._table('alert_rules')} FINAL WHERE NOT is_deleted{condition} ORDER BY service, name",
                           {"service": service})

    def _rule_row(self, service: str, name: str) -> tuple | None:
        return next((row for row in self._rule_rows(service) if row[1] == name), None)

    def _progress(self, service: str, rule: str, generation: str) -> tuple:
        """(watermark, evaluations, last_error, last_error_at) of the rule's generation."""
        rows = self._query(
            f"SELECT watermark, evaluations, last_error, last_error_at FROM {self._table('alert_progress')} FINAL "
            "WHERE service = {service:String} AND rule = {rule:String} AND generation = {generation:String}",
            {"service": service, "rule": rule, "generation": generation})
        if not rows:
            return None, 0, None, None
        watermark, evaluations, error, error_at = rows[0]
        return _naive(watermark), int(evaluations), error, _naive(error_at)

    def _put_rule(self, service: str, name: str, spec: str, generation: str, muted: datetime | None,
                  created: datetime, deleted: bool = False) -> None:
        self._write(lambda: self._insert(
            "alert_rules", ("service", "name", "spec", "generation", "muted_until", "created_at", "updated_at",
                            "version", "is_deleted"),
            [[service, name, spec, generation, _utc(muted), _utc(created), _utc(now()), _micros(), int(deleted)]]))

    def _put_group(self, service: str, name: str, spec: str, deleted: bool) -> None:
        self._write(lambda: self._insert(
            "alert_action_groups", ("service", "name", "spec", "updated_at", "version", "is_deleted"),
            [[service, name, spec, _utc(now()), _micros(), int(deleted)]]))

    def _put_progress(self, service: str, rule: str, generation: str, watermark: datetime | None, evaluations: int,
                      error: str | None, error_at: datetime | None) -> None:
        version = (int(self.fence()) << 64) | _micros()
        self._insert("alert_progress", _PROGRESS_COLUMNS,
                     [[service, rule, generation, _utc(watermark), evaluations, error, _utc(error_at), version]])

    def _insert_values(self, service: str, rule: str, generation: str, values: list[Value]) -> None:
        self._insert("alert_values", ("service", "rule", "generation", "dims_key", "window_end", "value", "lower", "upper"),
                     [[service, rule, generation, v.dims_key, _utc(v.window_end), v.value, v.lower, v.upper]
                      for v in values])

    def _insert_deliveries(self, deliveries: list[Delivery], next_at: datetime) -> None:
        """Ledger rows; the version (attempts, time) lets no re-insert undo a recorded attempt."""
        self._insert("alert_deliveries", _DELIVERY_COLUMNS, [[
            d.key, d.service, d.rule, d.alert_id, d.condition, d.receiver, orjson.dumps(d.payload).decode(), d.status,
            d.attempts, d.last_error, _utc(d.created_at), _utc(d.updated_at), _utc(next_at),
            (d.attempts << 64) | _micros()] for d in deliveries])

    def _table(self, name: str) -> str:
        return control.table(self._connection, name)

    def _query(self, sql: str, parameters: dict[str, Any]) -> list[tuple]:
        return self._connection.client().query(sql, parameters=parameters,
                                               settings=control.read_settings(self._connection)).result_rows

    def _insert(self, table: str, columns: tuple[str, ...], rows: list[list]) -> None:
        self._connection.client().insert(self._table(table), rows, column_names=list(columns),
                                         settings=control.write_settings(self._connection))

    @staticmethod
    def _write(work: Callable[[], Any]) -> Any:
        """A write, answered once ClickHouse acknowledged it (Overloaded, a 503, if it refused)."""
        return control.submit(work).result()


class Cached:
    """A read kept CACHE_S, dropped by `clear()` (this collector's writes, which it then reads at
    once); a read that raced a clear is not kept."""

    def __init__(self, read: Callable[[], list]) -> None:
        self._read = read
        self._value: tuple[float, list] | None = None
        self._clears = 0

    def get(self) -> list:
        value, clears = self._value, self._clears
        if value is not None and time.monotonic() - value[0] < CACHE_S:
            return value[1]
        at, fresh = time.monotonic(), self._read()
        if clears == self._clears:
            self._value = (at, fresh)
        return fresh

    def clear(self) -> None:
        self._clears += 1
        self._value = None


def _instance(row: tuple) -> Instance:
    (service, rule, _, dims_key, dimensions, state, alert_id, fired_at, resolved_at, value, threshold, history,
     clear_since, _) = row
    return Instance(service, rule, dims_key, orjson.loads(dimensions), state, alert_id, _naive(fired_at),
                    _naive(resolved_at), value, threshold, orjson.loads(history), _naive(clear_since))


def _delivery(row: tuple) -> Delivery:
    key, service, rule, alert_id, condition, receiver, payload, status, attempts, error, created, updated = row
    return Delivery(key, service, rule, alert_id, condition, receiver, orjson.loads(payload), status, int(attempts),
                    error, _naive(created), _naive(updated))


# An Evaluation as the intent log keeps it ------------------------------------------------------

def _time(at: datetime | None) -> str | None:
    return None if at is None else at.isoformat()


def _parse(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _evaluation_json(e: Evaluation) -> dict:
    return {
        "service": e.service, "rule": e.rule, "window_end": _time(e.window_end), "error": e.error,
        "instances": [{**vars(i), "fired_at": _time(i.fired_at), "resolved_at": _time(i.resolved_at),
                       "clear_since": _time(i.clear_since)} for i in e.instances],
        "values": [{"dims_key": v.dims_key, "window_end": _time(v.window_end), "value": v.value, "lower": v.lower,
                    "upper": v.upper} for v in e.values],
        "deliveries": [{"key": d.key, "service": d.service, "rule": d.rule, "alert_id": d.alert_id,
                        "condition": d.condition, "receiver": d.receiver, "payload": d.payload, "status": d.status}
                       for d in e.deliveries],
    }


def _evaluation(data: dict) -> Evaluation:
    instances = [Instance(**{**i, "fired_at": _parse(i["fired_at"]), "resolved_at": _parse(i["resolved_at"]),
                             "clear_since": _parse(i["clear_since"])}) for i in data["instances"]]
    values = [Value(v["dims_key"], _parse(v["window_end"]), v["value"], v["lower"], v["upper"])  # type: ignore[arg-type]
              for v in data["values"]]
    deliveries = [Delivery(**d) for d in data["deliveries"]]
    return Evaluation(data["service"], data["rule"], _parse(data["window_end"]),  # type: ignore[arg-type]
                      instances, values, deliveries, data["error"])
