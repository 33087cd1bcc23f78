"""Export to Azure Blob Storage (Azurite): by connection string and by container SAS URL, and what
happens when the destination is unreachable or refuses: status says so, ingestion goes on, and
nothing is skipped once it is back."""

import uuid

import pytest
from collector_process import free_port
from exported import assert_exactly_once, check_names, items_of, wait_status
from items import lines, mixed_items


def _container() -> str:
    return f"exports-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("by", ["connection_string", "sas_url"])
def test_export_to_azurite(exporting, azurite, by):
    service = exporting.create_service(f"exp-az-{by[:3]}")
    container = _container()
    if by == "sas_url":
        azurite.create_container(container)
        settings = {"destination": azurite.sas_url(container)}
    else:  # the container is created on first use
        settings = {"destination": azurite.connection_string, "container": container}
    items = mixed_items(2_000, seed=11)
    exporting.import_rows(service["name"], lines(items))
    with exporting.admin as client:
        client.put(f"/api/services/{service['name']}/export",
                   json={**settings, "enabled": False, "max_items_per_blob": 300}).raise_for_status()
        run = client.post(f"/api/services/{service['name']}/export/run", params={"wait": "true"}).json()
        status = client.get(f"/api/services/{service['name']}/export/status").json()
    assert run["state"] == "done", run
    assert "sig=" not in status["destination"] and "AccountKey" not in status["destination"]
    blobs = azurite.blobs(container)
    check_names(blobs, service)
    assert_exactly_once(items_of(blobs), {item["itemId"] for item in items})


def _unreachable(azurite):
    return {"destination": f"http://127.0.0.1:{free_port()}/devstoreaccount1/nowhere?sv=2021-08-06&sr=c&sp=rw&sig=abc"}


def _unauthorised(azurite):
    container = _container()
    azurite.create_container(container)
    return {"destination": azurite.sas_url(container).replace("sig=", "sig=AAAA")}


@pytest.mark.parametrize("broken", [_unreachable, _unauthorised], ids=["unreachable", "unauthorised"])
def test_failing_destination_is_reported_retried_and_skips_nothing(exporting, azurite, broken):
    service = exporting.create_service("exp-broken")
    name = service["name"]
    before = mixed_items(500, seed=21)
    exporting.import_rows(name, lines(before))
    with exporting.admin as client:
        client.put(f"/api/services/{name}/export", json={**broken(azurite), "interval_seconds": 60}).raise_for_status()
        failing = wait_status(client, name, lambda s: s["consecutive_failures"] >= 2, timeout=30)
        assert failing["last_error"] and failing["lag"] == 500 and failing["items_exported"] == 0
        # ingestion and queries carry on while export fails
        during = mixed_items(300, seed=22)
        assert exporting.import_rows(name, lines(during))["imported"] == 300
        assert client.get(f"/api/services/{name}/stats").json()["imported"] == 800
        # fixed: everything, including what arrived meanwhile, goes out once
        container = _container()
        client.put(f"/api/services/{name}/export",
                   json={"destination": azurite.connection_string, "container": container}).raise_for_status()
        done = wait_status(client, name, lambda s: s["lag"] == 0 and s["consecutive_failures"] == 0, timeout=30)
    assert done["items_exported"] == 800
    assert_exactly_once(items_of(azurite.blobs(container)), {i["itemId"] for i in before + during})


def test_manual_run_against_a_dead_destination_fails_with_the_reason(exporting):
    service = exporting.create_service("exp-dead-run")
    exporting.import_rows(service["name"], lines(mixed_items(10, seed=23)))
    dead = f"http://127.0.0.1:{free_port()}/devstoreaccount1/c?sv=2021-08-06&sig=abc"
    with exporting.admin as client:
        client.put(f"/api/services/{service['name']}/export", json={"destination": dead, "enabled": False}).raise_for_status()
        run = client.post(f"/api/services/{service['name']}/export/run", params={"wait": "true"}).json()
    assert run["state"] == "failed"
    assert "127.0.0.1" in run["error"] or "connect" in run["error"].lower()
