"""Live metrics of two collectors merged through the store's shared table (collector/store/clickhouse/
live.py over the chdb stand-in, live/sharing.py): the live state of each collector (a LiveState, as
its intake fills it) publishes its seconds, and the one serving a stream adds the other's. The
sharing threads' work is run tick by tick here (`Sharing.tick`), so what is merged when is exact;
tests/clickhouse/test_scaleout_live_map.py runs it in two collector processes."""

from __future__ import annotations

import time
from collections import Counter

import pyarrow as pa
from store_helpers import connection, migrated_url

from collector.store.clickhouse.live import LiveShare
from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.schema import SERVICE_COLUMN
from live.aggregates import Durations, Second
from live.condition import FAILURES
from live.sharing import Sharing
from live.state import MAX_WAIT_S, LiveState


def _requests(count: int, failed: int, ms: float) -> Second:
    return Second(requests=Durations(count, failed, count * ms, Counter({60: count})))


def _collector(connection: ClickHouseConnection, name: str) -> tuple[LiveState, Sharing]:
    state = LiveState()
    return state, Sharing(state, LiveShare(connection, name), idle_read_s=0)  # reads on every tick


def test_a_collector_streams_the_seconds_and_failures_another_counted(clickhouse_server):
    store = connection(clickhouse_server, migrated_url(clickhouse_server, "livesharing"))
    serving, serving_sharing = _collector(store, "a")
    other, other_sharing = _collector(store, "b")
    stream = serving.subscribe("svc", None, None, FAILURES)
    base = int(time.time()) + 30  # seconds ahead: every mark stays recent (store live.ALIVE_S) however slow the test
    for state, sharing in ((other, other_sharing), (serving, serving_sharing), (other, other_sharing)):
        state.finish_drain(base)
        sharing.tick()  # heartbeats: each knows the other, and b knows a watches
    assert serving.services_watched() == {"svc"} and other.services_watched() == {"svc"}

    second = base + 1
    serving.add_seconds(second, {("svc", "front", "a-1"): _requests(20, 0, 10.0)}, time.time())
    other.add_seconds(second, {("svc", "front", "b-1"): _requests(30, 5, 30.0),
                               ("other-svc", "x", "y"): _requests(7, 0, 1.0)}, time.time())
    failed = pa.table({SERVICE_COLUMN: ["svc", "svc"], "cloud_RoleName": ["front", "front"],
                       "cloud_RoleInstance": ["b-1", "b-1"], "id": ["f1", "ok"], "success": [False, True],
                       "duration": [30.0, 30.0]})
    other_sharing.collect(second, {"requests": failed})
    serving.finish_drain(second)
    serving_sharing.tick()
    # a counted the second; b has not published it: a waits (up to MAX_WAIT_S)
    assert serving.shown_through < second
    other.finish_drain(second)
    other_sharing.tick()
    serving_sharing.tick()
    assert serving.shown_through == second
    [merged] = serving.seconds(stream, second, second)
    assert merged["requests"]["count"] == 50 and merged["requests"]["failed"] == 5
    assert merged["requests"]["avgMs"] == (20 * 10 + 30 * 30) / 50
    assert [sample["id"] for _, sample in stream.samples_after(0, second)] == ["f1"]
    assert {(i["role"], i["instance"]) for i in serving.instances(stream)} == {("front", "a-1"), ("front", "b-1")}
    # read again: each second of b's is merged once
    serving_sharing.tick()
    assert serving.seconds(stream, second, second)[0]["requests"]["count"] == 50


def test_a_collector_that_stops_publishing_holds_a_stream_back_at_most_max_wait(clickhouse_server):
    store = connection(clickhouse_server, migrated_url(clickhouse_server, "livesilent"))
    serving, serving_sharing = _collector(store, "a")
    silent, silent_sharing = _collector(store, "silent")
    serving.subscribe("svc", None, None, FAILURES)
    base = int(time.time()) + 30
    for state, sharing in ((silent, silent_sharing), (serving, serving_sharing)):
        state.finish_drain(base)
        sharing.tick()  # the silent one's one heartbeat
    assert serving.shown_through == base
    serving.finish_drain(base + 10)  # a's own seconds run on...
    serving_sharing.tick()
    assert serving.shown_through == base + 10 - MAX_WAIT_S  # ...and the stream follows, MAX_WAIT_S behind


def test_the_single_collector_path_is_unchanged():
    state = LiveState()  # no Sharing: the DuckDB store
    state.finish_drain(int(time.time()))
    assert state.peers_through is None and state.shown_through == state.drained_through
