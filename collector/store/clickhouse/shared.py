"""The ClickHouse store with the state N collectors share kept in ClickHouse, not in each collector.

store.py's ClickHouseStore sends telemetry to ClickHouse and keeps control state in the collector's
local DuckDB file. For N stateless collectors behind a load balancer, what one collector writes and
another must read moves into ClickHouse here (the state tables of tables.py's registry, which
`insights store migrate` creates; a collector creates any a newer release added, by the same code):
- services and keys (`registry()`, services.py): a key created through one collector works on every
  other within services.REFRESH_SECONDS; payload settings (`collection`) likewise;
- console logs (`console`), so `insights logs` shows what any collector received;
- counters (`counters()`): each collector's increments go to ClickHouse with the batch they count,
  before the batch is acknowledged, and reads sum them over every collector;
- export settings and checkpoints (`exports`), so whichever collector holds the export lease
  (leases.py) carries on from the last one's checkpoint; `leases()` makes those leases;
- alert rules, action groups, their evaluation state and delivery ledger (`alerts`, alerts.py) and
  availability tests (`availability`, availability.py), so rules and tests made through any
  collector are read by all, and the holder of the alerts lease evaluates, delivers and probes;
- endpoints, their deployments and reported states (`endpoints`, endpoints.py), so an endpoint
  defined through one collector is served by the one holding the endpoints lease (endpoints/leased.py);
- the model registry, files included (`models`, models.py), and model monitors' definitions,
  references and windows done (`monitors`, monitors.py; their results go to the
  `modelMonitorResults` telemetry table, and runs read `modelData` in ClickHouse); scheduled
  monitor runs happen on the collector holding the `model-monitors` lease (monitoring/extension.py);
- the application map (`map_rollups`, map_rollups.py): read from the shared telemetry tables, so
  it shows every collector's traffic (no per-collector rollups are kept);
- live metrics (`live`, live.py): each collector publishes its seconds to a short-lived shared
  table and merges the others' into the streams it serves.
What stays in the local DuckDB file is per-collector bookkeeping no other collector needs (the
writer's local operations); store.py says why.
"""

from __future__ import annotations

import logging
from collections import Counter
from concurrent.futures import Future
from pathlib import Path

from collector.store.clickhouse import alerts, availability, console, counters, exports, live, map_rollups, services, tables
from collector.store.clickhouse.endpoints import EndpointStore
from collector.store.clickhouse.leases import Lease, Timing, collector_id
from collector.store.clickhouse.location import ClickHouseConnection, ClickHouseLocation
from collector.store.clickhouse.migrate import check_current
from collector.store.clickhouse.models import ModelRegistry
from collector.store.clickhouse.monitors import MonitorState
from collector.store.clickhouse.store import ClickHouseStore
from collector.store.clickhouse.writer import ClickHouseWriter
from collector.store.writer import Operation, Writer

log = logging.getLogger(__name__)


class SharedClickHouseStore(ClickHouseStore):
    def __init__(self, data_dir: Path, connection: ClickHouseConnection, **options) -> None:
        super().__init__(data_dir, connection, **options)
        tables.create_missing(connection)
        self.collector = collector_id()
        """This process's name in leases and status."""
        self.console = console.ConsoleLog(connection)  # type: ignore[assignment]
        self.collection = services.CollectionSettings(connection)  # type: ignore[assignment]
        self.endpoints = EndpointStore(connection)  # type: ignore[assignment]
        self.alerts = alerts.AlertState(connection)  # type: ignore[assignment]
        self.availability = availability.AvailabilityState(connection, self.writer)  # type: ignore[assignment]
        self.models = ModelRegistry(connection, self.data_dir)  # type: ignore[assignment]
        self.monitors = MonitorState(connection, self.writer)  # type: ignore[assignment]
        self.exports = exports.ExportState(connection, self.retention)  # type: ignore[assignment]
        self.writer.after_insert.remove(self.map_rollups.record)  # the local rollups: replaced by the next line
        self.map_rollups = map_rollups.ClickHouseMapRollups(connection)  # type: ignore[assignment]
        self.live = live.LiveShare(connection, self.collector)
        # the writer's batch stats (counters) go to ClickHouse; its operations and hooks stay local
        assert isinstance(self.writer, ClickHouseWriter)
        self.writer._local = _CountersInClickHouse(self.local_writer, connection)  # type: ignore[assignment]
        self._registry: services.Registry | None = None

    @classmethod
    def open(cls, data_dir: Path, location: ClickHouseLocation, **options) -> SharedClickHouseStore:
        connection = ClickHouseConnection.at(location)
        check_current(connection)
        return cls(data_dir, connection, **options)

    def registry(self) -> services.Registry:
        """The services registry over ClickHouse (made once)."""
        if self._registry is None:
            self._registry = services.Registry(self.clickhouse)
        return self._registry

    def lease(self, name: str, timing: Timing | None = None) -> Lease:
        """A lease named `name` held in this store, for work that must run on one collector."""
        return Lease(self.clickhouse, name, holder=self.collector, timing=timing)

    def counters(self, service: str) -> dict[str, int]:
        return counters.totals(self.clickhouse, service)

    def close(self) -> None:
        if self._registry is not None:
            self._registry.close()
        super().close()


class _CountersInClickHouse:
    """Stands for the local writer inside the ClickHouse writer: a write's counter increments are
    inserted into ClickHouse (synchronously, before the batch is acknowledged), its operation and
    hooks go on to the local writer. The rows are stored by then: if the increments fail, they are
    logged and lost rather than the batch answered 503 (which would make the SDKs store it twice)."""

    def __init__(self, local: Writer, connection: ClickHouseConnection) -> None:
        self._local = local
        self._connection = connection

    def write(self, tables=None, stats: Counter | None = None, operation: Operation | None = None) -> Future:
        if stats:
            try:
                counters.append(self._connection, stats)
            except Exception:  # noqa: BLE001 - a lost increment is better than a batch stored twice
                log.exception("counters: increments not stored")
        return self._local.write(tables=tables, operation=operation)
