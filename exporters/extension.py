"""Continuous export as a collector extension: its routes, and a scheduler that lives as long as
the app (see collector/extensions.py)."""

from __future__ import annotations

from collector.extensions import Core
from collector.store.clickhouse.leases import LeaseKeeper
from exporters import api
from exporters.scheduler import ExportGuard, ExportScheduler
from exporters.settings import DestinationPolicy
from exporters.sinks import policed_sinks

LEASE_NAME = "export"


class ExportExtension:
    name = "export"
    routers = (api.router,)

    def __init__(self) -> None:
        self.scheduler: ExportScheduler | None = None
        self.lease_keeper: LeaseKeeper | None = None
        self.policy: DestinationPolicy | None = None

    def start(self, core: Core) -> None:
        self.policy = DestinationPolicy(core.settings.allowed_export_roots, core.settings.export_allow_http)
        guard = self._guard(core)
        self.scheduler = ExportScheduler(core.store, core.registry, core.settings.data_dir,
                                         sink_factory=policed_sinks(self.policy), guard=guard)
        self.scheduler.start()

    def _guard(self, core: Core) -> ExportGuard | None:
        """On a store N collectors share (ClickHouse), export runs under a lease held in the store, so
        exactly one collector exports; its checkpoints carry the lease's epoch. On DuckDB, None: one
        collector, nothing to share."""
        if core.store.backend != "clickhouse":
            return None
        lease = core.store.lease(LEASE_NAME)  # type: ignore[attr-defined]
        core.store.exports.fence = lambda: lease.epoch  # type: ignore[attr-defined]
        self.lease_keeper = LeaseKeeper(lease).start()
        return ExportGuard(held=lease.held, holder=lambda: lease.seen.holder if lease.seen else "unknown")

    def stop(self) -> None:
        if self.scheduler is not None:
            self.scheduler.stop()  # finishes the blob in hand, its checkpoint included
            self.scheduler = None
        if self.lease_keeper is not None:
            self.lease_keeper.stop()  # released: another collector takes over without waiting out the ttl
            self.lease_keeper = None
