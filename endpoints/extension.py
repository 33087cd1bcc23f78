"""Online endpoints as a collector extension: the /api/endpoints routes, and the keeper of the
endpoint host processes (see keeper.py), which needs the collector's own URL and admin key because
the hosts talk to the collector through its API like any other client."""

from __future__ import annotations

import asyncio

from collector.extensions import Core
from endpoints import api
from endpoints.keeper import HostKeeper


class EndpointExtension:
    name = "endpoints"
    routers = (api.router,)

    def __init__(self, collector_url: str, admin_key: str) -> None:
        self.collector_url = collector_url
        self.admin_key = admin_key
        self.keeper: HostKeeper | None = None
        self.changing = asyncio.Lock()
        """One definition change at a time (each reads, checks and writes an endpoint)."""

    def start(self, core: Core) -> None:
        self.keeper = HostKeeper(core.settings.data_dir, self.collector_url, self.admin_key)
        self.keeper.begin(core.store.endpoints.names())

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.stop_all()
            self.keeper = None
