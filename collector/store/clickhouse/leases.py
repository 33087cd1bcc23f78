"""Leases in ClickHouse: work that must happen once among N collectors (continuous export, alert
evaluation, availability probes, model monitors) runs on the one collector holding its lease.

ClickHouse offers no compare-and-set, so a lease is a log of claims in the `leases` table (an
append-only MergeTree, control.py), and every collector derives the same holder from it:

- A row is (name, epoch, holder, inserted, expires). `inserted` is stamped by the *server*
  (`DEFAULT now64(6)`) and `expires = inserted + ttl`: lease time is the server's clock, never a
  collector's, so collectors' clocks may disagree freely.
- The lease's current epoch is the largest one in the log. Its holder is the collector whose first
  row for that epoch has the smallest `(inserted, holder)`: several may claim the same epoch, and the
  earliest claim the server stamped wins, in every collector's eyes.
- The holder's rows for that epoch form a chain: the first row's `expires`, then each later row that
  the server stamped no later than the expiry so far replaces it (a renewal extends, a release with
  ttl 0 ends). A row stamped after the chain ran out counts for nothing, so a renewal that arrives
  late cannot revive a lease that another collector may already have claimed.
- A collector claims epoch e+1 only when the server's clock is past the chain's expiry plus `settle`;
  after its claim is acknowledged it waits `settle`, reads the log again and holds the lease only if
  its claim won. It renews every ttl/3 and, after each renewal, reads the chain back.
- The holder acts only while its *own monotonic clock* says the lease is valid: from the moment it
  sent the claim or renewal that the read-back confirmed, ttl minus a margin. That moment precedes the
  server's stamp, so the holder stops before the server-side expiry, whatever the clocks say.

Why at most one holder acts: say A holds epoch e. B claims e+1 only after reading the server's
clock past A's expiry + settle. Every renewal A sent in time was stamped no later than that
expiry, and is visible `settle` later at most (settle bounds how long an insert takes to become
visible; ClickHouse inserts are atomic and visible once acknowledged), so B sees it and does not
claim; a renewal stamped later is void for A as well (A reads the chain back and stops). A itself
stops acting at its last confirmed send + ttl - margin, before the server-side expiry that B waits
out. Between contenders of one epoch the smallest server stamp wins; a claim stamped earlier than
the winner's is visible to it after `settle` (same bound), so the winner cannot be overtaken by a
claim it did not see. The assumption is a bound on insert visibility (`settle`, 2 s by default) and,
on a cluster, the replicas' clocks agreeing within it (inserts with quorum, reads with
`select_sequential_consistency`; control.py). The epoch is also a fencing token: writes made under
a lease (export checkpoints) carry it, and readers prefer the largest, so a holder paused past its
lease (a stopped VM) cannot overwrite its successor's progress.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from collector.store.clickhouse import control

log = logging.getLogger(__name__)

TTL_ENV = "INSIGHTS_LEASE_TTL_S"
SETTLE_ENV = "INSIGHTS_LEASE_SETTLE_S"


@dataclass(frozen=True)
class Timing:
    ttl: float = 15.0
    """How long a claim or renewal holds, from the server's stamp."""
    settle: float = 2.0
    """The longest a lease insert takes to become visible to every collector."""

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @property
    def margin(self) -> float:
        """How long before its lease ends, by its own clock, a holder stops acting (clock rates differ
        a little; a step under way needs time to stop)."""
        return max(0.05 * self.ttl, 0.1)

    @classmethod
    def from_environ(cls) -> Timing:
        return cls(ttl=float(os.environ.get(TTL_ENV, cls.ttl)), settle=float(os.environ.get(SETTLE_ENV, cls.settle)))


def collector_id() -> str:
    """Who this collector process is, in lease rows and status: host, pid and a random suffix."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class LeaseState:
    """The log of one lease as read at one moment: its epoch, holder, expiry, and the server's time."""

    epoch: int
    holder: str | None
    expires: datetime | None
    server_now: datetime

    def free(self, settle: float) -> bool:
        return self.expires is None or (self.server_now - self.expires).total_seconds() > settle


def read_state(connection: control.Connection, name: str) -> LeaseState:
    """The lease's newest epoch, its winner and the expiry of the winner's chain (see the docstring),
    with the server's clock, in one read."""
    leases = control.table(connection, "leases")
    ((server_now, rows),) = connection.client().query(
        f"SELECT now64(6, 'UTC'), groupArray((epoch, holder, inserted, expires)) FROM {leases} "
        f"WHERE name = {{name:String}} AND epoch = (SELECT max(epoch) FROM {leases} WHERE name = {{name:String}})",
        parameters={"name": name}, settings=control.read_settings(connection)).result_rows
    if not rows:
        return LeaseState(0, None, None, server_now)
    holder = min(rows, key=lambda row: (row[2], row[1]))[1]
    chain = sorted((inserted, expires) for _, row_holder, inserted, expires in rows if row_holder == holder)
    return LeaseState(int(rows[0][0]), holder, chain_expiry(chain), server_now)


def chain_expiry(rows: list[tuple[datetime, datetime]]) -> datetime:
    """The expiry of one holder's (inserted, expires) rows in stamp order: each row stamped no later
    than the expiry so far replaces it; the first row stamped after it ends the chain."""
    expires = rows[0][1]
    for inserted, row_expires in rows[1:]:
        if inserted > expires:
            break
        expires = row_expires
    return expires


class Lease:
    """One named lease as this collector sees it. `step()` claims or renews it (call it every
    `timing.renew_every`; LeaseKeeper does); `held()` says whether this collector may act now, and
    `epoch` is the fencing token of the term it holds."""

    def __init__(self, connection: control.Connection, name: str, holder: str | None = None,
                 timing: Timing | None = None) -> None:
        self.connection = connection
        self.name = name
        self.holder = holder or collector_id()
        self.timing = timing or Timing.from_environ()
        self.epoch = 0
        self.seen: LeaseState | None = None
        """The log as last read: who holds the lease (for status and error messages)."""
        self._valid_until = 0.0

    def held(self) -> bool:
        return time.monotonic() < self._valid_until

    def remaining(self) -> float:
        """Seconds this collector may still act without a renewal (0 if it does not hold the lease)."""
        return max(0.0, self._valid_until - time.monotonic())

    def step(self) -> bool:
        """Renew the lease if held, else claim it if free; whether it is held afterwards. A store
        error leaves the lease to run out on its own (this collector then stops acting)."""
        try:
            if self.held():
                self._renew()
            else:
                self._claim()
        except Exception as error:  # noqa: BLE001 - the store may be away; the lease then lapses
            log.warning("lease %s: %s", self.name, error)
        return self.held()

    def release(self) -> None:
        """End the term now (a clean stop): another collector takes over after `settle`, not `ttl`."""
        if not self.held():
            return
        self._valid_until = 0.0
        try:
            self._insert(self.epoch, ttl_ms=0)
        except Exception as error:  # noqa: BLE001 - the lease then runs out on its own
            log.warning("lease %s: release failed: %s", self.name, error)

    def _renew(self) -> None:
        sent = time.monotonic()
        self._insert(self.epoch, int(self.timing.ttl * 1000))
        self._confirm(self.epoch, sent)

    def _claim(self) -> None:
        state = self.seen = read_state(self.connection, self.name)
        if not state.free(self.timing.settle):
            return
        epoch = state.epoch + 1
        sent = time.monotonic()
        self._insert(epoch, int(self.timing.ttl * 1000))
        time.sleep(self.timing.settle)  # every earlier-stamped claim is visible after this
        self._confirm(epoch, sent)
        if self.held():
            log.info("lease %s: %s holds epoch %d", self.name, self.holder, epoch)

    def _confirm(self, epoch: int, sent: float) -> None:
        """Hold the lease until `sent` + ttl - margin if the log says this collector's chain for
        `epoch` runs past the server's now; else stop acting at once."""
        state = self.seen = read_state(self.connection, self.name)
        won = (state.epoch == epoch and state.holder == self.holder and state.expires is not None
               and state.expires > state.server_now)
        if won:
            self.epoch = epoch
            self._valid_until = sent + self.timing.ttl - self.timing.margin
        else:
            if self.held() or self.epoch == epoch:
                log.warning("lease %s: lost epoch %d to %s (epoch %d)", self.name, epoch, state.holder, state.epoch)
            self._valid_until = 0.0

    def _insert(self, epoch: int, ttl_ms: int) -> None:
        self.connection.client().command(
            f"INSERT INTO {control.table(self.connection, 'leases')} (name, epoch, holder, ttl_ms) "
            "SELECT {name:String}, {epoch:UInt64}, {holder:String}, {ttl_ms:UInt32}",
            parameters={"name": self.name, "epoch": epoch, "holder": self.holder, "ttl_ms": ttl_ms},
            settings=control.write_settings(self.connection))


class LeaseKeeper:
    """A thread that keeps stepping one lease for as long as the work it guards runs."""

    def __init__(self, lease: Lease) -> None:
        self.lease = lease
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"lease-{lease.name}", daemon=True)

    def start(self) -> LeaseKeeper:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.lease.step()
            self._stopping.wait(self.lease.timing.renew_every)

    def stop(self) -> None:
        """Stop renewing and release the lease, so another collector takes over at once."""
        self._stopping.set()
        self._thread.join()
        self.lease.release()
