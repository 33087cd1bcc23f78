"""Replaying batches set aside (collector/store/set_aside.py) against ingesting the same batches.

`--batches` of the ingest bench's batches (tests/loader.py: 500 mixed envelopes each) are set aside
by a real Store (a writer hook refuses them while the bench says so, as tests/spool_batches.py's
PassingRefusal does: DuckDB's own refusals cannot be provoked on cue), then replayed with the hook
off. Baseline, in the same run: the same batches written through the writer as ingestion writes
them (the ingest spool on, as the collector runs it), into a fresh store. Replay commits each batch
in a transaction of its own (one refused again stays alone), ingestion groups them: the figure says
what that choice costs in the rare case it is needed.

    python bench/set_aside.py [--batches 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from loader import ITEMS_PER_BATCH  # noqa: E402
from rich.progress import track  # noqa: E402
from spool_batches import PassingRefusal, prepared, stored  # noqa: E402

from collector.store import pacing  # noqa: E402
from collector.store.database import Store  # noqa: E402


def set_aside(folder: Path, batches: list) -> None:
    """A store with every batch set aside (refused by a hook for each of their operations; the
    writer's error line for each is not shown)."""
    pacing.HELD_REFUSED_SECONDS = 0.0
    logging.disable(logging.ERROR)
    refusals = [PassingRefusal(f"op{n}") for n in range(len(batches))]
    store = Store(folder, ingest_spool=True)
    store.writer.after_insert.extend(refusals)
    try:
        for batch in track(batches, description="setting aside", transient=True):
            store.writer.write(batch.tables, batch.stats).result(timeout=60)
        assert not stored(store)
    finally:
        store.close()
        logging.disable(logging.NOTSET)


def replay(folder: Path) -> tuple[float, int]:
    store = Store(folder, ingest_spool=True)
    try:
        began = time.perf_counter()
        answer = store.set_aside.replay()
        elapsed = time.perf_counter() - began
        assert not answer["refused"]
        return elapsed, answer["items"]
    finally:
        store.close()


def ingest(folder: Path, batches: list) -> tuple[float, int]:
    store = Store(folder, ingest_spool=True)
    try:
        began = time.perf_counter()
        for future in [store.writer.write(batch.tables, batch.stats) for batch in batches]:
            future.result(timeout=60)
        store.writer.sync()
        elapsed = time.perf_counter() - began
        return elapsed, sum(stored(store).values())
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-set-aside-"))
    batches = prepared(work, args.batches)
    ratios = []
    for round_ in range(args.rounds):
        set_aside(work / f"replay-{round_}", batches)
        replay_s, replayed = replay(work / f"replay-{round_}")
        ingest_s, ingested = ingest(work / f"ingest-{round_}", batches)
        assert replayed == ingested == args.batches * ITEMS_PER_BATCH, (replayed, ingested)
        ratios.append(replay_s / ingest_s)
        print(f"round {round_ + 1}: replay {replayed / replay_s:,.0f} items/s ({replay_s:.2f} s), "
              f"ingestion of the same batches {ingested / ingest_s:,.0f} items/s ({ingest_s:.2f} s): "
              f"replay takes {replay_s / ingest_s:.2f}x as long")
    print(f"median: replay takes {statistics.median(ratios):.2f}x as long as ingesting the same {args.batches} batches")


if __name__ == "__main__":
    main()
