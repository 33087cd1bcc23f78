"""Model monitoring as a collector extension: its routes, and the scheduler of monitor runs (see
collector/extensions.py). INSIGHTS_MONITOR_TICK_S sets how often the scheduler looks for due
windows (default 30 s)."""

from __future__ import annotations

import os

from collector.extensions import Core
from monitoring import api
from monitoring.scheduler import MonitorScheduler


class MonitoringExtension:
    name = "monitoring"
    routers = (api.router,)

    def __init__(self) -> None:
        self.scheduler: MonitorScheduler | None = None

    def start(self, core: Core) -> None:
        tick = float(os.environ.get("INSIGHTS_MONITOR_TICK_S") or 30)
        self.scheduler = MonitorScheduler(core.store.monitors, tick_seconds=tick).start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
