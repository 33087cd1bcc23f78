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
from backfill_history import TRICKY, assert_binned_equals_per_window, assert_binned_equals_per_window_of, history  # noqa: E402

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


@pytest.mark.parametrize("body", TRICKY, ids=lambda body: body["name"])
def test_backfill_of_queries_with_comments_and_every_string_form_on_clickhouse(store, body):
    """The binned query keeps the rule's own text (comments, verbatim and multi-line strings) and
    ClickHouse's lowering of it gives the per-window values."""
    assert_binned_equals_per_window_of(store, body)
