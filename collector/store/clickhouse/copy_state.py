"""`insights store copy`, the state beside telemetry: what a DuckDB store's collector was told to do,
moved into a ClickHouse store so that collectors on it carry on.

What moves, in this order (a later kind may name an earlier one):
- services with their keys (instrumentation key, API key digest: the SDKs and API keys in use keep
  working) and their payload settings;
- alerts: rules (spec, mute, watermark and evaluation count, the current state of each alert
  instance and the per-window values a dynamic rule learned from), action groups, availability
  tests. Not moved: the delivery ledger (notifications already sent, or pending ones the DuckDB
  collector would have retried: sending them from a second store risks sending them twice) and
  each test's last run (the prober runs each test again at its next interval);
- endpoints and their deployments (definitions, keys, traffic splits; each deployment starts over
  as Provisioning on the collector that holds the endpoints lease, as after a restart);
- the model registry: every version with its number, time and files (read from the data dir);
- model monitors (definitions, the last window done) and their reference sketches. Their results are telemetry
  (`modelMonitorResults`), copied with the rows.

The DuckDB side is read through store/*.py's own classes over the read-only file (the same SQL the
DuckDB collector runs); the ClickHouse side is written through store/clickhouse/*.py's classes.
Idempotent by name: an item the ClickHouse store has already (same service and name; for models
the same name and version) is skipped, so a second copy adds nothing. Each item's last write is
the one that makes it visible (a rule's row, a model's metadata), so a copy interrupted midway
redoes the item it was on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import orjson

from collector.store import alerts, availability, endpoints, models, monitors, services
from collector.store.clickhouse import alerts as ch_alerts
from collector.store.clickhouse import availability as ch_availability
from collector.store.clickhouse import endpoints as ch_endpoints
from collector.store.clickhouse import models as ch_models
from collector.store.clickhouse import monitors as ch_monitors
from collector.store.clickhouse import services as ch_services
from collector.store.clickhouse.copy import CopyReport, Progress, open_source
from collector.store.clickhouse.location import ClickHouseConnection

KINDS = ("services", "alert rules", "action groups", "availability tests", "endpoints", "models",
         "monitor references", "monitors")
"""What moves, as progress and reports name it."""
_SOURCE_TABLES = {"services": "services", "alert rules": "alert_rules", "action groups": "alert_action_groups",
                  "availability tests": "availability_tests", "endpoints": "endpoints", "models": "models",
                  "monitor references": "monitor_references", "monitors": "model_monitors"}
_SINCE_EVER = datetime(1970, 1, 1)


class _Source:
    """The DuckDB store's state, read through its own classes over one read-only connection."""

    def __init__(self, con: duckdb.DuckDBPyConnection, data_dir: Path) -> None:
        self.con = con
        self.tables = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        self.alerts = alerts.AlertState(self.reader, None)  # type: ignore[arg-type]  # reads only
        self.availability = availability.AvailabilityState(self.reader, None)  # type: ignore[arg-type]
        self.endpoints = endpoints.EndpointStore(self.reader, None)  # type: ignore[arg-type]
        self.models = models.ModelRegistry(self.reader, None, data_dir / models.MODELS_FOLDER)  # type: ignore[arg-type]
        self.monitors = monitors.MonitorState(self.reader, None)  # type: ignore[arg-type]

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cursor = self.con.cursor()
        try:
            yield cursor
        finally:
            cursor.close()

    def rows(self, sql: str) -> list[tuple]:
        with self.reader() as cursor:
            return cursor.execute(sql).fetchall()

    def count(self, kind: str) -> int:
        table = _SOURCE_TABLES[kind]
        return int(self.rows(f'SELECT count(*) FROM "{table}"')[0][0]) if table in self.tables else 0


def state_counts(data_dir: Path) -> dict[str, int]:
    """Items of each kind in the DuckDB store in `data_dir` (a progress bar's totals)."""
    with open_source(data_dir) as con:
        source = _Source(con, data_dir)
        return {kind: source.count(kind) for kind in KINDS}


def copy_state(data_dir: Path, connection: ClickHouseConnection,
               progress: Progress = lambda kind, items: None) -> list[CopyReport]:
    """Copy every kind of state of the DuckDB store in `data_dir` into `connection`'s database."""
    with open_source(data_dir) as con:
        return _copy(_Source(con, data_dir), connection, progress)


def _copy(source: _Source, connection: ClickHouseConnection, progress: Progress) -> list[CopyReport]:
    steps: dict[str, Callable[[_Source, ClickHouseConnection], Iterator[bool]]] = {
        "services": _services, "alert rules": _rules, "action groups": _groups,
        "availability tests": _tests, "endpoints": _endpoints, "models": _models, "monitor references": _references,
        "monitors": _monitors}
    reports = []
    for kind in KINDS:
        report = CopyReport(kind)
        if _SOURCE_TABLES[kind] in source.tables:
            for inserted in steps[kind](source, connection):
                report.source_rows += 1
                report.inserted += inserted
                report.skipped += not inserted
                progress(kind, 1)
        reports.append(report)
    return reports


def _services(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    registry = ch_services.Registry(connection, refresh_seconds=3600)
    settings = ch_services.CollectionSettings(connection)
    wanted = {}
    if "service_collection" in source.tables:
        wanted = {name: services.Collection(tuple(c for c in text.split(",") if c), rate) for name, text, rate
                  in source.rows("SELECT service, collections, sample_rate FROM service_collection")}
    try:
        for row in source.rows("SELECT name, instrumentation_key, api_key_sha256, api_key_prefix, "
                               "enable_app_insights, created_at FROM services ORDER BY name"):
            service = services.Service(*row)
            inserted = registry.import_service(service)
            collection = wanted.get(service.name)
            if inserted and collection is not None and settings.get(service.name) != collection:
                asyncio.run(settings.set(service.name, collection))
            yield inserted
    finally:
        registry.close()


def _rules(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_alerts.AlertState(connection)
    for rule in source.alerts.rules():
        yield target.import_rule(rule, source.alerts.instances(rule.service, rule.name),
                                 source.alerts.values(rule.service, rule.name, _SINCE_EVER))


def _groups(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_alerts.AlertState(connection)
    for (service,) in source.rows("SELECT DISTINCT service FROM alert_action_groups ORDER BY service"):
        present = target.action_groups(service)
        for name, spec in source.alerts.action_groups(service).items():
            if name not in present:
                target.save_action_group(service, name, spec)
            yield name not in present


def _tests(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_availability.AvailabilityState(connection, None)  # type: ignore[arg-type]  # no runs recorded
    present = {(test.service, test.name) for test in target.tests()}
    for test in source.availability.tests():
        if (test.service, test.name) not in present:
            target.save(test.service, test.name, test.spec)
        yield (test.service, test.name) not in present


def _endpoints(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_endpoints.EndpointStore(connection)
    for name in source.endpoints.names():
        endpoint = source.endpoints.get(name)
        if endpoint is None or target.get(name) is not None:
            yield False
            continue
        target.create(endpoint).result()
        for deployment in endpoint.deployments:
            target.put_deployment(deployment).result()
        yield True


def _models(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_models.ModelRegistry(connection, source.models.directory.parent, settle=0)
    for model in reversed(source.models.versions()):  # oldest first, so the newest claims its number last
        if not source.models.has_files(model):
            raise FileNotFoundError(f"model {model.id}: no files at {source.models.version_dir(model.name, model.version)}")
        yield target.import_version(model, source.models.version_dir(model.name, model.version))


def _references(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_monitors.MonitorState(connection, None)  # type: ignore[arg-type]  # results are telemetry
    for service, name, rows in source.rows("SELECT service, name, rows FROM monitor_references ORDER BY service, name"):
        sketch = source.monitors.reference(service, name)
        if sketch is None or target.reference(service, name) is not None:
            yield False
            continue
        target.save_reference(service, name, sketch, int(rows)).result()
        yield True


def _monitors(source: _Source, connection: ClickHouseConnection) -> Iterator[bool]:
    target = ch_monitors.MonitorState(connection, None)  # type: ignore[arg-type]  # results are telemetry
    present = {(m["service"], m["name"]) for m in target.monitors()}
    for service, name, definition, last_window_end in source.rows(
            "SELECT service, name, definition, last_window_end FROM model_monitors ORDER BY service, name"):
        if (service, name) in present:
            yield False
            continue
        target.save_monitor(service, name, orjson.loads(definition)).result()
        if last_window_end is not None:
            target.mark_window(service, name, last_window_end).result()
        yield True
