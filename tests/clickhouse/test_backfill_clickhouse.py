"""A new dynamic rule's backfill (alerts/backfill.py) on the ClickHouse store: the one binned query,
lowered to ClickHouse SQL, gives the values the per-window queries give, on the seeded week of
tests/alerts/backfill_history.py (ClickHouse: the stand-in, chdb behind the HTTP interface)."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pytest
from store_helpers import connection, migrated_url

sys.path.insert(0, str(Path(__file__).parents[1] / "alerts"))
from backfill_history import assert_binned_equals_per_window, history  # noqa: E402

from collector.store.schema import SEQ_COLUMN  # noqa: E402


@pytest.fixture(scope="module")
def store(clickhouse_server):
    conn = connection(clickhouse_server, migrated_url(clickhouse_server, "backfill"))
    seq = 0
    for name, table in history().items():
        conn.client().insert_arrow(name, table.append_column(SEQ_COLUMN, pa.array(range(seq, seq + table.num_rows), pa.int64())),
                                   database=conn.database)
        seq += table.num_rows
    return SimpleNamespace(backend="clickhouse", clickhouse=conn)  # what the KQL engine reads a ClickHouse store through


def test_backfill_binned_values_equal_the_per_window_values_on_clickhouse(store):
    assert_binned_equals_per_window(store)
