"""Secrets at rest (#14, item 10): the data dir is private, API keys are kept only as digests, shown
in clear once (create, rotate-key), and a data dir that kept them in clear is migrated on open."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pytest
from collector_process import CollectorProcess
from wait import rows_eventually

from collector.client import ApiError, Webservice, Workspace

OLD_SERVICES_DDL = """CREATE TABLE services (
    name VARCHAR PRIMARY KEY,
    instrumentation_key VARCHAR NOT NULL UNIQUE,
    api_key VARCHAR NOT NULL UNIQUE,
    enable_app_insights BOOLEAN NOT NULL DEFAULT TRUE,
    created_at TIMESTAMP NOT NULL
)"""
"""The services table as collectors before #14 made it, keys in clear."""


def message(ikey: str, text: str, **properties) -> dict:
    return {"iKey": ikey, "time": "2026-11-23T16:53:49.943891Z", "name": "Microsoft.ApplicationInsights.Message",
            "data": {"baseType": "MessageData", "baseData": {"message": text, "properties": properties}}}


def track(collector, items: list[dict]) -> httpx.Response:
    response = collector.http.post("/v2.1/track", content=json.dumps(items).encode(),
                                   headers={"content-type": "application/json"})
    assert response.status_code == 200, response.text
    return response


def insights(collector, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "INSIGHTS_URL": collector.url, "INSIGHTS_API_KEY": collector.admin_key, "COLUMNS": "200"}
    result = subprocess.run([sys.executable, "-m", "collector", *args], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 0, result.stderr + result.stdout
    return result


def status_with(collector, key: str, name: str) -> int:
    return collector.http.get(f"/api/services/{name}", headers={"x-api-key": key}).status_code


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def file_bytes(data_dir: Path) -> bytes:
    """Every file the collector keeps in its data dir, concatenated."""
    return b"".join(path.read_bytes() for path in sorted(data_dir.rglob("*")) if path.is_file())


@pytest.fixture
def own_collector(tmp_path):
    """A collector of this test's own, with no INSIGHTS_API_KEY: it makes its admin.key."""
    process = CollectorProcess(tmp_path / "data", env={"INSIGHTS_API_KEY": ""})
    yield process
    process.stop()


def start(process: CollectorProcess) -> CollectorProcess:
    process.start()
    process.admin_key = (process.data_dir / "admin.key").read_text().strip()
    return process


def test_the_data_dir_and_every_file_in_it_are_private(own_collector):
    """0700 folders and 0600 files: the DuckDB file and its WAL, the admin key, and the spilled
    original of an item over 64 KB (written by the ingestion path, under the collector's umask)."""
    collector = start(own_collector)
    service = collector.create_service("modes")
    track(collector, [message(service["instrumentation_key"], "big", Contents="x" * 100_000)])
    (row,) = rows_eventually(collector, "traces", service)
    data_dir = collector.data_dir
    spilled = data_dir / "blob" / row["customDimensions"]["payloadRef"]
    assert spilled.is_file()
    found = {path.relative_to(data_dir).as_posix(): mode(path) for path in [data_dir, *data_dir.rglob("*")]}
    loose = {path: f"{bits:o}" for path, bits in found.items()
             if bits != (0o700 if (data_dir / path).is_dir() else 0o600)}
    assert loose == {}, f"not private: {loose}"
    assert {"admin.key", "telemetry.duckdb"} <= set(found)
    assert _live_wal_mode(collector, service) == 0o600


def _live_wal_mode(collector, service) -> int:
    """The WAL's mode, caught while it exists: the writer checkpoints it away after 2 s idle, so keep writing."""
    wal = collector.data_dir / "telemetry.duckdb.wal"
    deadline = time.monotonic() + 30
    while True:
        track(collector, [message(service["instrumentation_key"], "keeps a WAL")])
        try:
            return mode(wal)
        except FileNotFoundError:
            assert time.monotonic() < deadline, "no write left a WAL in 30 s"
            time.sleep(0.05)


def test_no_api_key_in_clear_in_any_file_of_the_data_dir(own_collector):
    """The keys create and rotate-key return are nowhere on disk: not in the WAL while the collector
    runs, not in the DuckDB file after the checkpoint of a clean stop."""
    collector = start(own_collector)
    keys = [collector.create_service(f"bytes-{n}")["api_key"] for n in range(3)]
    on_disk = file_bytes(collector.data_dir)
    assert b"bytes-2" in on_disk  # the services were written...
    assert [key for key in keys if key.encode() in on_disk] == []  # ...their keys were not
    rotated = collector.create_service("bytes-rotated")
    with collector.admin as client:
        keys.append(client.post(f"/api/services/{rotated['name']}/keys/rotate").json()["api_key"])
    keys.append(rotated["api_key"])
    on_disk = file_bytes(collector.data_dir)
    assert [key for key in keys if key.encode() in on_disk] == []
    collector.stop()
    assert not (collector.data_dir / "telemetry.duckdb.wal").exists()  # checkpointed into the file
    on_disk = file_bytes(collector.data_dir)
    assert [key for key in keys if key.encode() in on_disk] == []


def test_show_and_list_mask_the_api_key(app_collector):
    created = app_collector.create_service("masked")
    key, name = created["api_key"], created["name"]
    assert created["api_key_masked"] is False and created["api_key_prefix"] == key[:6] and len(key) >= 32
    with app_collector.admin as admin:
        shown = admin.get(f"/api/services/{name}")
        listed = admin.get("/api/services")
        switched = admin.patch(f"/api/services/{name}", json={"enable_app_insights": False})
    with app_collector.client({"x-api-key": key}) as own:
        shown_to_itself = own.get(f"/api/services/{name}")
    for answer in (shown, listed, switched, shown_to_itself):
        assert answer.status_code == 200 and key not in answer.text
    for service in (shown.json(), switched.json(), shown_to_itself.json(),
                    next(s for s in listed.json() if s["name"] == name)):
        assert service["api_key"] == key[:6] + "…" and service["api_key_prefix"] == key[:6]
        assert service["api_key_masked"] is True
        assert service["connection_string"] == created["connection_string"]  # still all a wrapper needs


def test_cli_prints_the_key_once_and_masks_it_after(collector):
    created = insights(collector, "service", "create", "cli-secret").stdout
    key = next(line.split(": ", 1)[1] for line in created.splitlines() if line.startswith("api_key: "))
    assert "will not be shown again" in created and "InstrumentationKey=" in created
    assert status_with(collector, key, "cli-secret") == 200
    shown = insights(collector, "service", "show", "cli-secret").stdout
    listed = insights(collector, "service", "list").stdout
    assert key not in shown and key[:6] + "…" in shown
    assert key not in listed and key[:6] + "…" in listed
    rotated = insights(collector, "service", "rotate-key", "cli-secret").stdout
    new_key = next(line.split(": ", 1)[1] for line in rotated.splitlines() if line.startswith("api_key: "))
    assert "will not be shown again" in rotated and new_key != key
    assert status_with(collector, key, "cli-secret") == 401
    assert status_with(collector, new_key, "cli-secret") == 200


def test_rotate_key_retires_the_old_key_at_once_and_for_good(own_collector):
    collector = start(own_collector)
    created = collector.create_service("rotate")
    name, old = created["name"], created["api_key"]
    other = collector.create_service("rotate-other")
    assert status_with(collector, old, name) == 200
    with collector.client({"x-api-key": old}) as as_service:
        assert as_service.post(f"/api/services/{name}/keys/rotate").status_code == 403  # the admin's to do
    assert collector.http.post(f"/api/services/{name}/keys/rotate").status_code == 401
    with collector.admin as admin:
        assert admin.post("/api/services/no-such-service/keys/rotate").status_code == 404
        rotated = admin.post(f"/api/services/{name}/keys/rotate")
    assert rotated.status_code == 200
    new = rotated.json()["api_key"]
    assert rotated.json()["api_key_masked"] is False and new != old
    assert rotated.json()["instrumentation_key"] == created["instrumentation_key"]  # out of scope: unchanged
    assert status_with(collector, old, name) == 401
    assert status_with(collector, new, name) == 200
    assert status_with(collector, other["api_key"], other["name"]) == 200  # no one else's key moved
    track(collector, [message(created["instrumentation_key"], "still sending")])  # connection strings hold

    # The SDK's verb, and the store agrees with memory: after a restart the same key works, not the old ones.
    svc = Webservice(Workspace(collector.url, api_key=collector.admin_key), name)
    newest = svc.rotate_key()
    assert svc.api_key == newest and svc.api_key_prefix == newest[:6]
    collector.stop()
    collector.start()
    assert [status_with(collector, key, name) for key in (old, new, newest)] == [401, 401, 200]
    assert Webservice(Workspace(collector.url, api_key=newest), name).api_key == newest[:6] + "…"
    with pytest.raises(ApiError) as refused:
        Webservice(Workspace(collector.url, api_key=new), name)
    assert refused.value.status_code == 401


def test_a_data_dir_with_keys_in_clear_is_migrated_and_its_keys_still_work(tmp_path):
    """A data dir as collectors before #14 left it (keys in clear, 0644 in 0755): on open the keys
    are hashed in place, the old key still authenticates, nothing shows it any more, and opening
    again changes nothing."""
    data_dir = tmp_path / "data"
    data_dir.mkdir(mode=0o755)
    database = data_dir / "telemetry.duckdb"
    old_keys = {"old-one": "uOu2MIyQ0p4yEgTn1BqY7mSbLx7kWdZc", "old-two": "Zx9-Lq_3VtRmNcB2sHf8JpKe5GaYo1Wd"}
    with duckdb.connect(str(database)) as con:
        con.execute(OLD_SERVICES_DDL)
        for number, (name, key) in enumerate(old_keys.items()):
            con.execute("INSERT INTO services VALUES (?, ?, ?, TRUE, TIMESTAMP '2026-11-01 10:00:00')",
                        [name, f"0000000{number}-aaaa-bbbb-cccc-dddddddddddd", key])
    database.chmod(0o644)
    data_dir.chmod(0o755)
    assert old_keys["old-one"].encode() in database.read_bytes()

    collector = CollectorProcess(data_dir).start()
    try:
        for name, key in old_keys.items():
            assert status_with(collector, key, name) == 200
            with collector.client({"x-api-key": key}) as own:
                shown = own.get(f"/api/services/{name}").json()
            assert shown["api_key"] == key[:6] + "…" and shown["api_key_masked"] is True
        assert mode(data_dir) == 0o700 and mode(database) == 0o600
        service = {"name": "old-one", "instrumentation_key": "00000000-aaaa-bbbb-cccc-dddddddddddd"}
        track(collector, [message(service["instrumentation_key"], "after the migration")])
        rows_eventually(collector, "traces", service)
    finally:
        collector.stop()
    with duckdb.connect(str(database), read_only=True) as con:
        columns = [row[0] for row in con.execute("DESCRIBE services").fetchall()]
        stored = con.execute("SELECT name, api_key_prefix FROM services ORDER BY name").fetchall()
    assert "api_key" not in columns and "api_key_sha256" in columns
    assert stored == [(name, key[:6]) for name, key in sorted(old_keys.items())]
    assert [name for name, key in old_keys.items() if key.encode() in file_bytes(data_dir)] == []

    again = CollectorProcess(data_dir).start()  # idempotent: the migrated file opens as it is
    try:
        assert [status_with(again, key, name) for name, key in old_keys.items()] == [200, 200]
        assert status_with(again, old_keys["old-one"], "old-two") == 404  # each key still reads only its own
    finally:
        again.stop()
