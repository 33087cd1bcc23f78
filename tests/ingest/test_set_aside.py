"""Batches set aside (acknowledged, then refused by the store) are listed and replayed: by the store,
then through a real collector's API, SDK and CLI, with every acknowledged item in the store at the
end and none twice.

The refusal that goes away is a writer hook that raises while the test says so (spool_batches.
PassingRefusal: DuckDB's own passing refusals cannot be provoked on cue here); the refusal that
stays is DuckDB's own, a timestamp it cannot read."""

import shutil

import pytest
from collector_process import CollectorProcess
from loader import ITEMS_PER_BATCH
from spool_batches import set_aside_two, stored
from test_cli_and_sdk import insights

from collector.client import ApiError, Workspace
from collector.store.database import Store


def test_a_replay_commits_what_was_set_aside_once_the_refusal_is_gone(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    refusal = set_aside_two(data_dir, tmp_path, monkeypatch)
    store = Store(data_dir, ingest_spool=True)
    store.writer.after_insert.append(refusal)
    try:
        listed = store.set_aside.batches()
        assert [(b["record"], b["items"]) for b in listed] == [(2, {"bench": ITEMS_PER_BATCH}), (4, {"bench": 1})]
        assert "refused while the test says so" in listed[0]["reason"] and "not a time" in listed[1]["reason"]
        assert store.counters("bench")["set_aside"] == ITEMS_PER_BATCH + 1

        still = store.set_aside.replay()  # the cause is still there: nothing moves
        assert (still["replayed"], [r["record"] for r in still["refused"]]) == (0, [2, 4])
        assert len(store.set_aside.batches()) == 2

        refusal.on = False
        kept = {path.name: path.read_bytes() for path in store.set_aside.folder.glob("*.spool")}
        done = store.set_aside.replay()
        assert (done["replayed"], done["items"], [r["record"] for r in done["refused"]]) == (1, ITEMS_PER_BATCH, [4])
        assert stored(store) == {f"op{n}": ITEMS_PER_BATCH for n in range(3)}
        counts = store.counters("bench")
        assert (counts["accepted"], counts["set_aside"]) == (3 * ITEMS_PER_BATCH, 1)
        assert [b["record"] for b in store.set_aside.batches()] == [4]

        # a crash after the commit and before the file's deletion leaves the file: not replayed twice
        for name, data in kept.items():
            (store.set_aside.folder / name).write_bytes(data)
        assert [b["record"] for b in store.set_aside.batches()] == [4]
        assert store.set_aside.replay()["replayed"] == 0
        assert stored(store)["op1"] == ITEMS_PER_BATCH
        assert sorted(p.name for p in store.set_aside.folder.glob("*.spool")) == [f"{4:020d}.spool"]
    finally:
        store.close()


def test_the_admin_lists_and_replays_through_a_running_collector(tmp_path, monkeypatch):
    data_dir = tmp_path / "data"
    set_aside_two(data_dir, tmp_path, monkeypatch)
    collector = CollectorProcess(data_dir).start()
    try:
        assert f"{ITEMS_PER_BATCH + 1} acknowledged items (2 batches) are set aside" in collector.log_path.read_text()
        admin = Workspace(collector.url, api_key=collector.admin_key)
        service = admin.create_service("bench")
        with pytest.raises(ApiError) as refused:
            Workspace(collector.url, api_key=service.api_key).set_aside()
        assert refused.value.status_code == 403

        listing = insights(collector, "store", "set-aside", "list", check=False)
        assert listing.returncode == 0, listing.stderr
        assert f"set aside: 2 batches, {ITEMS_PER_BATCH + 1:,} items" in listing.stdout
        assert "refused while the test says so" in listing.stdout and "not a time" in listing.stdout

        doctor = insights(collector, "doctor", check=False)
        assert doctor.returncode == 1 and f"the store refused {ITEMS_PER_BATCH + 1:,} acknowledged items" in doctor.stdout

        replay = insights(collector, "store", "set-aside", "replay", check=False)  # this collector has no refusing hook
        assert replay.returncode == 1, replay.stdout + replay.stderr
        assert f"replayed: 1 batches, {ITEMS_PER_BATCH:,} items" in replay.stdout
        assert "refused again: record 4" in replay.stderr
        found = admin.query('union requests, traces, dependencies, exceptions, customMetrics '
                            '| summarize n = count() by operation_Id | order by operation_Id asc', service="bench")
        assert dict(zip(found["operation_Id"], found["n"])) == {f"op{n}": ITEMS_PER_BATCH for n in range(3)}
        assert (service.stats()["accepted"], service.stats()["set_aside"]) == (3 * ITEMS_PER_BATCH, 1)
        assert [b["record"] for b in admin.set_aside()["batches"]] == [4]
    finally:
        collector.stop()
    shutil.rmtree(data_dir, ignore_errors=True)
