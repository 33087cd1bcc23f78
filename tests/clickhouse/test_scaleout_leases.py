"""Leases held in ClickHouse (collector/store/clickhouse/leases.py): one holder at a time, renewed,
taken over when the holder stops renewing, released on a clean stop."""

import threading
import time
import uuid

from chdb_stand_in import StandInConnection
from store_helpers import with_state_tables

from collector.store.clickhouse.leases import Lease, Timing, read_state

FAST = Timing(ttl=3.0, settle=0.3)


def _leases(clickhouse_server, count: int, name: str = "export") -> list[Lease]:
    connection = with_state_tables(StandInConnection(clickhouse_server, f"lease_{uuid.uuid4().hex[:8]}"))
    return [Lease(connection, name, holder=f"collector-{i}", timing=FAST) for i in range(count)]


def test_scaleout_contenders_claiming_at_once_agree_on_one_holder(clickhouse_server):
    leases = _leases(clickhouse_server, 4)
    barrier = threading.Barrier(len(leases))

    def contend(lease):
        barrier.wait()
        lease.step()

    threads = [threading.Thread(target=contend, args=(lease,)) for lease in leases]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    holders = [lease.holder for lease in leases if lease.held()]
    assert len(holders) == 1
    assert read_state(leases[0].connection, "export").holder == holders[0]
    # the others, stepping again, see it held and do not take it
    for lease in leases:
        lease.step()
    assert [lease.holder for lease in leases if lease.held()] == holders


def test_scaleout_a_renewed_lease_stays_and_a_lapsed_one_is_taken_over(clickhouse_server):
    first, second = _leases(clickhouse_server, 2)
    assert first.step()
    epoch = first.epoch
    deadline = time.monotonic() + FAST.ttl + FAST.renew_every  # past the first term
    while time.monotonic() < deadline:  # renewing past several ttls keeps it
        assert first.step()
        assert not second.step()
        time.sleep(FAST.renew_every)
    assert first.epoch == epoch
    # the holder stops renewing (as a killed process does): it stops acting by its own clock...
    while first.held():
        time.sleep(0.05)
    # ...and the other takes over with a larger epoch (the fencing token) once the server's clock
    # is past the expiry
    while not second.step():
        time.sleep(0.1)
    assert second.epoch == epoch + 1
    assert not first.step()  # the old holder finds it held by the other


def test_scaleout_a_released_lease_is_taken_over_without_waiting_out_its_term(clickhouse_server):
    first, second = _leases(clickhouse_server, 2)
    assert first.step()
    epoch = first.epoch
    first.release()
    assert not first.held()
    # taken over once `settle` has passed, long before the released term would have run out
    while not second.step():
        time.sleep(0.1)
    assert second.epoch == epoch + 1
