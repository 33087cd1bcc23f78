"""Batches as the ingestion pipeline hands them to the store's writer, what the store holds of them,
and a store left with batches set aside (tests/ingest/test_spool.py, test_set_aside.py, the
dashboard's browser test)."""

from collections import Counter
from pathlib import Path

import pyarrow as pa
from loader import ITEMS_PER_BATCH, batch_body

from collector.ingest.prepare import prepare_body
from collector.store import pacing
from collector.store.database import Store

FOREVER_REFUSED = {"requests": pa.table({"timestamp": ["not a time"], "itemId": ["refused-1"]})}
"""A batch DuckDB refuses for good (a timestamp it cannot read: the pipeline never hands over such a
thing, so the tests build it)."""
FOREVER_REFUSED_COUNTS = Counter({("bench", "received"): 1, ("bench", "accepted"): 1})


def prepared(folder: Path, count: int):
    """`count` distinct batches of the loader's 500 mixed items, as the pipeline hands them over."""
    routing = {"bench": ("bench", True)}
    return [prepare_body(batch_body("bench", f"op{n}", n), "gzip", routing, folder) for n in range(count)]


def stored(store: Store) -> Counter:
    with store.reader() as con:
        return Counter(dict(con.execute(
            "SELECT operation_Id, count(*) FROM (SELECT operation_Id FROM traces UNION ALL SELECT operation_Id FROM requests "
            "UNION ALL SELECT operation_Id FROM dependencies UNION ALL SELECT operation_Id FROM exceptions "
            "UNION ALL SELECT operation_Id FROM customMetrics) GROUP BY ALL").fetchall()))


class PassingRefusal:
    """A writer hook refusing any group that holds the rows of `operation` while `on`: a refusal
    that goes away. DuckDB's own passing refusals (out of memory under a heavy query, a full disk)
    cannot be provoked on cue."""

    def __init__(self, operation: str = "op1"):
        self.operation = operation
        self.on = True

    def __call__(self, con, name: str, rows: pa.Table) -> None:
        if self.on and "operation_Id" in rows.column_names and self.operation in rows.column("operation_Id").to_pylist():
            raise RuntimeError(f"refused while the test says so ({name})")


def set_aside_two(data_dir: Path, scratch: Path, monkeypatch) -> PassingRefusal:
    """A store (closed on return) that took op0 and op2 of the service "bench" and set aside op1
    (record 2, refused while the hook it returns is on) and FOREVER_REFUSED (record 4)."""
    monkeypatch.setattr(pacing, "HELD_REFUSED_SECONDS", 0.0)
    batches = prepared(scratch, 3)
    refusal = PassingRefusal()
    store = Store(data_dir, ingest_spool=True)
    store.writer.after_insert.append(refusal)
    try:
        for batch in batches:
            store.writer.write(batch.tables, batch.stats).result(timeout=30)
        store.writer.write(FOREVER_REFUSED, FOREVER_REFUSED_COUNTS).result(timeout=30)
        assert stored(store) == {"op0": ITEMS_PER_BATCH, "op2": ITEMS_PER_BATCH}
    finally:
        store.close()
    return refusal
