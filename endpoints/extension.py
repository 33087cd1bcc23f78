"""Online endpoints as a collector extension: the /api/endpoints routes, and the keeper of the
endpoint host processes (see keeper.py), which needs the collector's own URL and admin key because
the hosts talk to the collector through its API like any other client. On a store N collectors
share (ClickHouse) the hosts run on the one collector holding the endpoints lease (leased.py)."""

from __future__ import annotations

import asyncio
import time

from collector.extensions import Core
from endpoints import api
from endpoints.keeper import HostKeeper
from endpoints.leased import LeasedHosts


class EndpointExtension:
    name = "endpoints"
    routers = (api.router,)

    def __init__(self, collector_url: str, admin_key: str) -> None:
        self.collector_url = collector_url
        self.admin_key = admin_key
        self.keeper: HostKeeper | LeasedHosts | None = None
        self.changing = asyncio.Lock()
        """One definition change at a time (each reads, checks and writes an endpoint)."""
        self.in_force: dict[str, float] = {}
        """For each endpoint, when the latest read of its definition that its host has put in force
        began (time.monotonic(); the host echoes the read's stamp once its router runs on it)."""

    def host_read(self, name: str, applied_read: str | None) -> None:
        """The host's read of `name` says which earlier read it has put in force (its stamp)."""
        try:
            stamp = float(applied_read or "")
        except ValueError:
            return
        if stamp > self.in_force.get(name, 0.0):
            self.in_force[name] = stamp

    async def applied(self, name: str, timeout: float = 3.0) -> bool:
        """Wait until the endpoint's host has put in force a read of the definition begun after
        now, so that a change is in force when its request returns; False if it did not within
        `timeout` (the host is away: it applies the change when it is back)."""
        since = time.monotonic()
        while self.in_force.get(name, 0.0) <= since:
            if time.monotonic() - since > timeout:
                return False
            await asyncio.sleep(0.02)
        return True

    def start(self, core: Core) -> None:
        address = core.settings.endpoint_host

        def keeper() -> HostKeeper:
            return HostKeeper(core.settings.data_dir, self.collector_url, self.admin_key, address)

        if core.store.backend == "clickhouse":
            self.keeper = LeasedHosts(core.store, keeper, address)
        else:
            core.store.endpoints.place(address)
            self.keeper = keeper()
        self.keeper.begin(core.store.endpoints.names())

    def stop(self) -> None:
        if self.keeper is not None:
            self.keeper.stop_all()
            self.keeper = None
