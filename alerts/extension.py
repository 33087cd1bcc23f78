"""Alerting as a collector extension (see collector/extensions.py): its routes, the rule scheduler,
the deliverer of notifications and the availability test runner, living as long as the app.

On a store N collectors share (ClickHouse), the three run under one lease held in the store
(`alerts`), so exactly one collector evaluates rules, sends notifications and probes at a time; the
others serve the routes (rules, tests and the ledger are in the store, read by every collector),
and take the work over when the holder stops or dies. On DuckDB there is one collector and no lease.
"""

from __future__ import annotations

from collections.abc import Callable

from alerts import api, targets_api
from alerts.config import AlertsConfig
from alerts.delivery import Deliverer
from alerts.probes import ProbeRunner
from alerts.scheduler import Scheduler
from collector.extensions import Core
from collector.store.clickhouse.leases import LeaseKeeper
from collector.store.database import Store

LEASE_NAME = "alerts"


class AlertsExtension:
    name = "alerts"
    routers = (api.router, targets_api.router)

    def __init__(self, config: AlertsConfig | None = None) -> None:
        self.config = config or AlertsConfig()
        self.store: Store | None = None
        self.scheduler: Scheduler | None = None
        self.deliverer: Deliverer | None = None
        self.probes: ProbeRunner | None = None
        self.lease_keeper: LeaseKeeper | None = None

    def start(self, core: Core) -> None:
        self.store = core.store
        registry = core.registry

        def services() -> set[str]:
            return {service.name for service in registry.all()}

        self.scheduler = Scheduler(core.store, self.config, services)
        self.deliverer = Deliverer(core.store, self.config)
        self.probes = ProbeRunner(core.store, self.config, services)
        held = self._lease(core)
        for part in (self.scheduler, self.deliverer, self.probes):
            if held is not None:
                part.active = held
            part.start()

    def _lease(self, core: Core) -> Callable[[], bool] | None:
        """On ClickHouse, the alerts lease's `held` (its epoch fences the evaluation's writes); None on
        DuckDB, where this collector is the only one."""
        if core.store.backend != "clickhouse":
            return None
        lease = core.store.lease(LEASE_NAME)  # type: ignore[attr-defined]
        core.store.alerts.fence = lambda: lease.epoch  # type: ignore[attr-defined]
        self.lease_keeper = LeaseKeeper(lease).start()
        return lease.held

    def stop(self) -> None:
        for part in (self.probes, self.deliverer, self.scheduler):
            if part is not None:
                part.stop()
        self.scheduler = self.deliverer = self.probes = None
        if self.lease_keeper is not None:
            self.lease_keeper.stop()  # released once the work in hand is done: another collector takes over
            self.lease_keeper = None
