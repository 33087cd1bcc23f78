"""Endpoints kept in ClickHouse (collector/store/clickhouse/endpoints.py) as two collectors' stores see
them: what one writes the other reads within its refresh, a state report about an older generation
is dropped, and a deleted endpoint neither comes back through a late update nor leaves its
deployments to a new endpoint of the same name."""

from __future__ import annotations

import time
import uuid

import pytest
from chdb_stand_in import StandInConnection
from store_helpers import eventually, with_state_tables

from collector.store.clickhouse.endpoints import EndpointStore
from collector.store.endpoints import Deployment, Endpoint, new_key

REFRESH_S = 0.2


@pytest.fixture
def connection(clickhouse_server):
    return with_state_tables(StandInConnection(clickhouse_server, f"ep_{uuid.uuid4().hex[:8]}"))


@pytest.fixture
def stores(connection):
    return EndpointStore(connection, refresh_s=REFRESH_S), EndpointStore(connection, refresh_s=REFRESH_S)


def _endpoint(name: str = "ep-store", port: int = 40000) -> Endpoint:
    return Endpoint(name, port, new_key(), new_key(), {}, {}, 100, 5000)



def test_scaleout_an_endpoint_written_through_one_store_is_read_through_the_other(stores):
    first, second = stores
    assert second.names() == []
    first.create(_endpoint()).result()
    first.put_deployment(Deployment("ep-store", "blue", "/scripts/blue.py")).result()
    found = eventually(lambda: (e := second.get("ep-store")) is not None and e.deployments and e)
    assert [(d.name, d.state, d.generation) for d in found.deployments] == [("blue", "Provisioning", 1)]
    found.traffic, found.primary_key = {"blue": 100}, "rotated"
    second.update(found).result()
    second.report_state("ep-store", "blue", 1, {"state": "Succeeded", "logs": "blue init"}).result()
    again = eventually(lambda: (e := first.get("ep-store")).traffic == {"blue": 100} and e)
    assert again.primary_key == "rotated"
    assert (again.deployments[0].state, again.deployments[0].logs) == ("Succeeded", "blue init")
    # the hosts' placement names the address in every store's scoring URI
    second.place("10.1.2.3", "collector-b")
    assert eventually(lambda: first.get("ep-store").to_json()["scoring_uri"] == "http://10.1.2.3:40000/score")


def test_scaleout_a_report_about_an_older_generation_is_dropped(stores):
    first, second = stores
    first.create(_endpoint()).result()
    first.put_deployment(Deployment("ep-store", "blue", "/scripts/blue.py")).result()
    first.put_deployment(Deployment("ep-store", "blue", "/scripts/blue2.py", generation=2)).result()
    second.report_state("ep-store", "blue", 1, {"state": "Failed", "error_code": "ERR_2200"}).result()
    (blue,) = first.get("ep-store").deployments
    assert (blue.entry_script, blue.generation, blue.state) == ("/scripts/blue2.py", 2, "Provisioning")
    second.report_state("ep-store", "blue", 2, {"state": "Succeeded"}).result()
    assert eventually(lambda: first.get("ep-store").deployments[0].state == "Succeeded")  # within its refresh


def test_scaleout_a_deleted_endpoint_stays_deleted_and_leaves_nothing_to_its_successor(stores):
    first, second = stores
    first.create(_endpoint()).result()
    first.put_deployment(Deployment("ep-store", "blue", "/scripts/blue.py")).result()
    stale = eventually(lambda: second.get("ep-store"))
    first.delete("ep-store").result()
    second.update(stale).result()  # an update read before the delete, written after it
    assert first.get("ep-store") is None and eventually(lambda: second.names() == [])
    first.create(_endpoint(port=40001)).result()
    again = eventually(lambda: second.get("ep-store"))
    assert (again.port, again.deployments) == (40001, [])
    first.put_deployment(Deployment("ep-store", "green", "/scripts/green.py")).result()
    first.delete_deployment("ep-store", "green").result()
    assert first.get("ep-store").deployments == []


def test_scaleout_a_store_that_cannot_be_read_answers_the_last_view(stores, connection):
    first, second = stores
    first.create(_endpoint()).result()
    assert eventually(lambda: second.get("ep-store"))
    connection.client().command(f"RENAME TABLE `{connection.database}`.`endpoints` TO `{connection.database}`.`away`")
    time.sleep(REFRESH_S)  # past the refresh time: the next read tries the store, and fails
    assert second.get("ep-store").name == "ep-store" and second.names() == ["ep-store"]
    connection.client().command(f"RENAME TABLE `{connection.database}`.`away` TO `{connection.database}`.`endpoints`")
    first.delete("ep-store").result()
    assert eventually(lambda: second.names() == [])
