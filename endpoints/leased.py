"""Endpoint hosts on a store N collectors share (ClickHouse): every endpoint's host runs on exactly
one collector, the holder of the `endpoints` lease held in the store (collector/store/clickhouse/
leases.py), and the scoring URIs every collector shows name that collector's address.

One lease for all endpoints, not one per endpoint: a lease costs a row inserted every ttl/3 by its
holder and a read by every other collector, and ClickHouse wants few, large inserts (per-endpoint
leases would multiply both by the number of endpoints); with one lease there is one address to
advertise, and a takeover moves every host at once. The price: the holder's machine runs every
endpoint's deployments, so it must be sized for all of them (the other collectors still share
ingestion and queries). Spreading hosts over collectors would be per-endpoint leases (or buckets of
endpoints), with this same placement per lease.

`LeasedHosts` stands for HostKeeper in the endpoints extension (the same start/stop/stop_all): a
thread looks at the lease every SYNC_S. While this collector holds it, it records its address
(EndpointStore.place: the endpoint_host setting), runs a host for every endpoint in the store and
stops the hosts of endpoints deleted through any collector. When the lease is lost (another
collector took it, or it could not be renewed for a whole ttl), it stops every host; the new holder starts
them once the lease's settle time has passed. A clean stop stops the hosts first and then releases
the lease, so the next holder's routers find the ports free. A lease that lapses for a moment and comes back
(a renewal confirmed late) keeps the hosts running (`_lost`), so two routers of one endpoint may
overlap for a moment around a takeover on different machines: each request is still served once,
by the router it reached.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from collector.store.clickhouse.leases import LeaseKeeper
from endpoints.keeper import HostKeeper

log = logging.getLogger("endpoints.leased")

LEASE_NAME = "endpoints"
SYNC_S = 0.25
"""How often the lease is looked at (a lost lease stops the hosts within this) and, while held, how
often the endpoints in the store are compared with the hosts running."""


class LeasedHosts:
    def __init__(self, store, make_keeper: Callable[[], HostKeeper], address: str) -> None:
        self.store = store
        self.make_keeper = make_keeper
        self.address = address
        self.lease = store.lease(LEASE_NAME)
        self.lease_keeper = LeaseKeeper(self.lease)
        self.keeper: HostKeeper | None = None
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="endpoint-lease", daemon=True)

    def begin(self, names: list[str] | None = None) -> None:
        """Start contending for the lease (the endpoints to host are read from the store)."""
        self.lease_keeper.start()
        self.thread.start()

    def start(self, name: str) -> None:
        """A new endpoint: its host starts here at once if this collector holds the lease."""
        with self.lock:
            if self.keeper is not None:
                self.keeper.start(name)

    def stop(self, name: str, timeout: float = 40.0) -> None:
        with self.lock:
            keeper = self.keeper
        if keeper is not None:
            keeper.stop(name, timeout)

    def stop_all(self) -> None:
        """Stop the hosts, then release the lease (another collector takes over after `settle`)."""
        self.stopping.set()
        self.thread.join()
        self._drop_hosts()
        self.lease_keeper.stop()

    def _run(self) -> None:
        lapsed_since: float | None = None
        while not self.stopping.wait(SYNC_S):
            try:
                if self.lease.held():
                    lapsed_since = None
                    self._host_all()
                elif self.keeper is not None:
                    lapsed_since = lapsed_since or time.monotonic()
                    if self._lost(lapsed_since):
                        log.warning("endpoints lease lost: stopping the endpoint hosts here")
                        self._drop_hosts()
            except Exception as error:  # noqa: BLE001 - the store may be away: try again next time
                log.warning("endpoint hosts: %s", error)

    def _lost(self, lapsed_since: float) -> bool:
        """Whether to stop the hosts, the lease not being held now: once another collector holds it,
        or it has lapsed for a whole ttl. A renewal confirmed late (a busy machine, a slow store)
        lets the lease lapse for a moment and come back to this collector: restarting every
        deployment for that would cost more than the moment's overlap a takeover can bring."""
        seen = self.lease.seen
        taken = seen is not None and seen.holder is not None and seen.holder != self.lease.holder
        return taken or time.monotonic() - lapsed_since > self.lease.timing.ttl

    def _host_all(self) -> None:
        """Run a host for every endpoint in the store, and none for those deleted."""
        if self.keeper is None:
            self.store.endpoints.place(self.address, self.lease.holder)
            keeper = self.make_keeper()
            with self.lock:
                self.keeper = keeper
            log.warning("endpoints lease held (epoch %d): hosting endpoints at %s", self.lease.epoch, self.address)
            keeper.begin([])
        wanted = set(self.store.endpoints.names())
        with self.keeper.lock:
            running = set(self.keeper.hosts)
        for name in sorted(wanted - running):
            self.keeper.start(name)
        for name in sorted(running - wanted):
            self.keeper.stop(name)

    def _drop_hosts(self) -> None:
        with self.lock:
            keeper, self.keeper = self.keeper, None
        if keeper is not None:
            keeper.stop_all()
