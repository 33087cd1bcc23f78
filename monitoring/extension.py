"""Model monitoring as a collector extension: its routes, and the scheduler of monitor runs (see
collector/extensions.py). INSIGHTS_MONITOR_TICK_S sets how often the scheduler looks for due
windows (default 30 s).

On a store N collectors share (ClickHouse), scheduled runs happen under the `model-monitors` lease
held in the store (collector/store/clickhouse/leases.py), so exactly one collector runs each window;
a run asked for through the API (`POST .../run`) runs on the collector that was asked."""

from __future__ import annotations

import os

from collector.extensions import Core
from collector.store.clickhouse.leases import LeaseKeeper
from monitoring import api
from monitoring.scheduler import MonitorScheduler

LEASE_NAME = "model-monitors"


class MonitoringExtension:
    name = "monitoring"
    routers = (api.router,)

    def __init__(self) -> None:
        self.scheduler: MonitorScheduler | None = None
        self.lease_keeper: LeaseKeeper | None = None

    def start(self, core: Core) -> None:
        tick = float(os.environ.get("INSIGHTS_MONITOR_TICK_S") or 30)
        held = None
        if core.store.backend == "clickhouse":
            self.lease_keeper = LeaseKeeper(core.store.lease(LEASE_NAME)).start()  # type: ignore[attr-defined]
            held = self.lease_keeper.lease.held
        self.scheduler = MonitorScheduler(core.store.monitors, tick_seconds=tick, held=held).start()

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        if self.lease_keeper is not None:
            self.lease_keeper.stop()  # released: another collector takes over without waiting out the ttl
            self.lease_keeper = None
