"""Live metrics and the application map as a collector extension (see collector/extensions.py):
the intake observes every accepted batch, its routes stream what it counted. On a store shared by
N collectors (the ClickHouse store's `live`), sharing.py merges the other collectors' counts in."""

from __future__ import annotations

from collector.extensions import Core
from live import api, appmap_api, quickpulse
from live.intake import Intake
from live.sharing import Sharing
from live.state import LiveState


class LiveExtension:
    name = "live"
    routers = (api.router, appmap_api.router, quickpulse.router)

    def __init__(self) -> None:
        self.state = LiveState()
        self.intake: Intake | None = None
        self.sharing: Sharing | None = None

    def start(self, core: Core) -> None:
        self.state = LiveState()  # a restart after a store failure starts live metrics afresh
        share = getattr(core.store, "live", None)  # only a store N collectors share has one
        self.sharing = Sharing(self.state, share).start() if share is not None else None
        self.intake = Intake(self.state, on_second=self.sharing.collect if self.sharing else None).start()
        core.ingest_observers.append(self.intake.observe)

    def stop(self) -> None:
        if self.intake is not None:
            self.intake.stop()
            self.intake = None
        if self.sharing is not None:
            self.sharing.stop()
            self.sharing = None
