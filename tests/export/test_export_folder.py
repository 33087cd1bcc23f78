"""Export to a folder: the layout, every stored column, and a lossless round trip through import."""

import orjson
from exported import assert_exactly_once, check_names, folder_blobs, items_of
from items import lines, mixed_items


def test_export_run_writes_every_item_once_in_the_app_insights_layout(app_collector, tmp_path):
    service = app_collector.create_service("exp-folder")
    items = mixed_items(3_000, seed=1)
    app_collector.import_rows(service["name"], lines(items))
    with app_collector.admin as client:
        client.put(f"/api/services/{service['name']}/export",
                   json={"destination": str(tmp_path), "enabled": False, "max_items_per_blob": 200}).raise_for_status()
        run = client.post(f"/api/services/{service['name']}/export/run", params={"wait": "true"}).json()
        status = client.get(f"/api/services/{service['name']}/export/status").json()
    assert run["state"] == "done", run
    assert (run["total"], run["done"]) == (3_000, 3_000)
    assert (status["items_exported"], status["lag"], status["last_error"]) == (3_000, 0, None)
    blobs = folder_blobs(tmp_path)
    check_names(blobs, service)
    assert all(len(data.splitlines()) <= 200 for data in blobs.values())
    assert_exactly_once(items_of(blobs), {item["itemId"] for item in items})
    assert not list(tmp_path.rglob("*.tmp")), "staging files left behind"


def test_items_carry_every_stored_column_and_the_type_folder_matches(app_collector, tmp_path):
    service = app_collector.create_service("exp-columns")
    items = mixed_items(60, seed=2)
    app_collector.import_rows(service["name"], lines(items))
    _export_to(app_collector, service, tmp_path)
    from items import RECORD_TYPE_OF

    from collector.store.schema import TABLE_BY_ITEM_TYPE

    by_id = {item["itemId"]: item for item in items}
    for name, data in folder_blobs(tmp_path).items():
        for line in data.splitlines():
            exported = orjson.loads(line)
            table = TABLE_BY_ITEM_TYPE[exported["itemType"]]
            assert list(exported) == table.column_names  # every column, by name, in schema order
            assert f"/{RECORD_TYPE_OF[exported['itemType']]}/" in name
            original = by_id[exported["itemId"]]
            assert isinstance(exported["customDimensions"], dict)
            assert exported["timestamp"].endswith("Z")
            for key, value in original.items():
                assert exported[key] == value, (key, exported[key], value)


def test_an_exported_blob_imports_back_losslessly(app_collector, tmp_path):
    """export(import(export(x))) == export(x): the export format is exactly what import reads."""
    source = app_collector.create_service("exp-rt-src")
    copy = app_collector.create_service("exp-rt-copy")
    app_collector.import_rows(source["name"], lines(mixed_items(600, seed=3)))
    _export_to(app_collector, source, tmp_path / "first")
    first = folder_blobs(tmp_path / "first")
    for data in first.values():
        result = app_collector.import_rows(copy["name"], data.splitlines())
        assert result["errors"] == []
    _export_to(app_collector, copy, tmp_path / "second")
    second = folder_blobs(tmp_path / "second")
    key = lambda item: item["itemId"]  # noqa: E731
    assert sorted(items_of(second), key=key) == sorted(items_of(first), key=key)


def test_scheduled_export_picks_up_new_items_on_its_interval(exporting, tmp_path):
    service = exporting.create_service("exp-sched")
    with exporting.admin as client:
        client.put(f"/api/services/{service['name']}/export",
                   json={"destination": str(tmp_path), "interval_seconds": 1}).raise_for_status()
    first, late = mixed_items(100, seed=4), mixed_items(50, seed=5, max_age_days=30)  # late: old timestamps
    exporting.import_rows(service["name"], lines(first))
    _wait_for_items(exporting, service, 100)
    exporting.import_rows(service["name"], lines(late))
    _wait_for_items(exporting, service, 150)
    assert_exactly_once(items_of(folder_blobs(tmp_path)), {i["itemId"] for i in first + late})


def _export_to(exporting, service, folder):
    with exporting.admin as client:
        client.put(f"/api/services/{service['name']}/export",
                   json={"destination": str(folder), "enabled": False}).raise_for_status()
        run = client.post(f"/api/services/{service['name']}/export/run", params={"wait": "true"}).json()
    assert run["state"] == "done", run


def _wait_for_items(exporting, service, count):
    from exported import wait_status

    with exporting.admin as client:
        wait_status(client, service["name"], lambda s: s["items_exported"] >= count and s["lag"] == 0, timeout=30)
