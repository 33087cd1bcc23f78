"""Services in ClickHouse (collector/store/clickhouse/services.py), as two collectors see them: a name
created on both at once is created once, deletes and re-creations reach the other."""

from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from store_helpers import with_state_tables

from collector.store.clickhouse.location import ClickHouseConnection
from collector.store.clickhouse.services import Registry
from collector.store.services import ServiceError


@pytest.fixture
def registries(clickhouse_server):
    connection = with_state_tables(ClickHouseConnection(clickhouse_server.client, f"svc_{uuid.uuid4().hex[:8]}"))
    pair = [Registry(connection, refresh_seconds=0.2), Registry(connection, refresh_seconds=0.2)]
    yield pair
    for registry in pair:
        registry.close()


def _create(registry: Registry, name: str):
    try:
        return asyncio.run(registry.create(name))
    except ServiceError as error:
        return error


def test_scaleout_the_same_name_created_on_two_collectors_at_once_is_created_once(registries):
    for attempt in range(5):
        name = f"race-{attempt}-{uuid.uuid4().hex[:6]}"
        with ThreadPoolExecutor(2) as pool:
            outcomes = list(pool.map(_create, registries, [name] * len(registries)))
        created = [o for o in outcomes if not isinstance(o, ServiceError)]
        refused = [o for o in outcomes if isinstance(o, ServiceError)]
        assert len(created) == 1 and len(refused) == 1 and refused[0].status_code == 409, outcomes
        # both collectors end up with the winner's keys
        for registry in registries:
            registry.refresh()
            assert registry.by_api_key(created[0].api_key).name == name


def test_scaleout_a_delete_reaches_the_other_collector_and_the_name_can_be_reused(registries):
    first, second = registries
    name = f"gone-{uuid.uuid4().hex[:6]}"
    old = asyncio.run(first.create(name))
    second.refresh()
    assert second.by_instrumentation_key(old.instrumentation_key).name == name
    asyncio.run(second.delete(name))
    deadline = time.monotonic() + 10
    while first.by_instrumentation_key(old.instrumentation_key) is not None:  # the refresh thread drops it
        assert time.monotonic() < deadline
        time.sleep(0.05)
    new = asyncio.run(first.create(name))
    second.refresh()
    assert second.get(name).instrumentation_key == new.instrumentation_key != old.instrumentation_key
    assert second.by_api_key(old.api_key) is None and second.by_api_key(new.api_key).name == name
