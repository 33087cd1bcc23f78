"""Live metrics and the application map as a collector extension (see collector/extensions.py):
the intake observes every accepted batch, its routes stream what it counted."""

from __future__ import annotations

from collector.extensions import Core
from live import api, appmap_api, quickpulse
from live.intake import Intake
from live.state import LiveState


class LiveExtension:
    name = "live"
    routers = (api.router, appmap_api.router, quickpulse.router)

    def __init__(self) -> None:
        self.state = LiveState()
        self.intake: Intake | None = None

    def start(self, core: Core) -> None:
        self.state = LiveState()  # a restart after a store failure starts live metrics afresh
        self.intake = Intake(self.state).start()
        core.ingest_observers.append(self.intake.observe)

    def stop(self) -> None:
        if self.intake is not None:
            self.intake.stop()
            self.intake = None
