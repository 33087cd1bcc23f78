"""A new dynamic rule's backfill (alerts/backfill.py) asks the store once, binned by window, and gets
the values the per-window queries get, on a seeded week in a DuckDB store (ClickHouse:
tests/clickhouse/test_backfill_clickhouse.py)."""

from __future__ import annotations

from backfill_history import BEFORE, RULES, assert_binned_equals_per_window, rule

from alerts import backfill


def test_backfill_binned_values_equal_the_per_window_values_on_duckdb(store):
    assert_binned_equals_per_window(store)


def test_backfill_of_a_week_is_672_windows_of_15_minutes(store):
    found = rule(RULES[0])
    ends = backfill.window_ends(found, BEFORE)
    assert len(ends) == 672 and ends[-1] < BEFORE and (BEFORE - ends[0]).days == 7
    values = backfill.backfill(store, found, BEFORE, 30)
    assert [v.window_end for v in values] == ends  # one value per window, the quiet hours' zeros included
    assert any(v.value == 0 for v in values) and any((v.value or 0) > 0 for v in values)
