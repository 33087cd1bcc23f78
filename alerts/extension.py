"""Alerting as a collector extension (see collector/extensions.py): its routes, the rule scheduler,
the deliverer of notifications and the availability test runner, living as long as the app."""

from __future__ import annotations

from alerts import api, targets_api
from alerts.config import AlertsConfig
from alerts.delivery import Deliverer
from alerts.probes import ProbeRunner
from alerts.scheduler import Scheduler
from collector.extensions import Core
from collector.store.database import Store


class AlertsExtension:
    name = "alerts"
    routers = (api.router, targets_api.router)

    def __init__(self, config: AlertsConfig | None = None) -> None:
        self.config = config or AlertsConfig()
        self.store: Store | None = None
        self.scheduler: Scheduler | None = None
        self.deliverer: Deliverer | None = None
        self.probes: ProbeRunner | None = None

    def start(self, core: Core) -> None:
        self.store = core.store
        registry = core.registry

        def services() -> set[str]:
            return {service.name for service in registry.all()}

        self.scheduler = Scheduler(core.store, self.config, services)
        self.deliverer = Deliverer(core.store, self.config)
        self.probes = ProbeRunner(core.store, self.config, services)
        for part in (self.scheduler, self.deliverer, self.probes):
            part.start()

    def stop(self) -> None:
        for part in (self.probes, self.deliverer, self.scheduler):
            if part is not None:
                part.stop()
        self.scheduler = self.deliverer = self.probes = None
