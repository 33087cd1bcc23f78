"""Continuous export as a collector extension: its routes, and a scheduler that lives as long as
the app (see collector/extensions.py)."""

from __future__ import annotations

from collector.extensions import Core
from exporters import api
from exporters.scheduler import ExportScheduler
from exporters.settings import DestinationPolicy
from exporters.sinks import policed_sinks


class ExportExtension:
    name = "export"
    routers = (api.router,)

    def __init__(self) -> None:
        self.scheduler: ExportScheduler | None = None
        self.policy: DestinationPolicy | None = None

    def start(self, core: Core) -> None:
        self.policy = DestinationPolicy(core.settings.allowed_export_roots, core.settings.export_allow_http)
        self.scheduler = ExportScheduler(core.store, core.registry, core.settings.data_dir,
                                         sink_factory=policed_sinks(self.policy))
        self.scheduler.start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()  # finishes the blob in hand, its checkpoint included
            self.scheduler = None
