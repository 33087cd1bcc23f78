"""Retention: rows older than retention_days go, but with export on, only rows already exported."""

from datetime import UTC, datetime, timedelta

from exported import wait_status
from items import lines, mixed_items


def _only(items, item_type):
    return [item for item in items if item["itemType"] == item_type]


def _old(count, seed):
    """Items 5 to 9 days old."""
    return mixed_items(count, seed=seed, now=datetime.now(UTC) - timedelta(days=5), max_age_days=4)


def test_retention_deletes_old_rows_only_once_exported(app_collector, tmp_path):
    service = app_collector.create_service("exp-retain")
    name = service["name"]
    exported_old = _only(_old(120, seed=41), "trace")
    not_exported_type = _only(_old(120, seed=42), "request")
    recent = _only(mixed_items(120, seed=43, max_age_days=0.5), "trace")
    app_collector.import_rows(name, lines(exported_old + not_exported_type + recent))

    with app_collector.admin as client:
        client.put(f"/api/services/{name}/export", json={
            "destination": str(tmp_path), "types": ["Messages"], "retention_days": 1, "interval_seconds": 3600,
        }).raise_for_status()
        # first pass: retention before export, so the old traces stay (not yet exported); old requests
        # (a type this service does not export) go by age alone; then everything is exported
        wait_status(client, name, lambda s: s["items_exported"] == 40 and s["lag"] == 0)
        assert _count(app_collector, name, "traces") == 40
        assert _count(app_collector, name, "requests") == 0

        late_old = _only(_old(60, seed=45), "trace")  # old timestamps, arriving now: not exported yet
        app_collector.import_rows(name, lines(late_old))
        run = client.post(f"/api/services/{name}/export/run", params={"wait": "true"}).json()
        status = client.get(f"/api/services/{name}/export/status").json()
    assert run["state"] == "done", run
    # the exported old traces are gone, the late old ones were kept for this run's export, recent stay
    assert _count(app_collector, name, "traces") == len(recent) + len(late_old)
    assert status["items_exported"] == 40 + len(late_old)
    assert status["retention_deleted"] == len(exported_old) + len(not_exported_type)


def test_retention_without_export_goes_by_age(app_collector):
    service = app_collector.create_service("exp-retain-off")
    name = service["name"]
    old, recent = _only(_old(60, seed=46), "trace"), _only(mixed_items(60, seed=47, max_age_days=0.5), "trace")
    app_collector.import_rows(name, lines(old + recent))
    app_collector.import_rows(app_collector.create_service("exp-retain-x")["name"], lines(mixed_items(12, seed=48)))
    with app_collector.admin as client:
        client.put(f"/api/services/{name}/export", json={"enabled": False, "retention_days": 2}).raise_for_status()
        wait_status(client, name, lambda s: s["retention_deleted"] == len(old))
    assert _count(app_collector, name, "traces") == len(recent)


def _count(exporting, service, table):
    return exporting.query(f"{table} | count", service=service)[0]["Count"]
