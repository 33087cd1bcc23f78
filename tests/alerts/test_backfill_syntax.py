"""A dynamic rule's backfill reads its query's stages from the KQL parse tree (alerts/backfill.py):
comments holding quotes, pipes and `by`, every string form (verbatim, obfuscated, multi-line,
escaped quotes, brackets and `//` inside), a `by` inside a call or a string, nested parentheses
are binned, and give the values the per-window queries give on a seeded week in a DuckDB store;
a `let` or an assignment to `timestamp` falls back to the per-window queries."""

from __future__ import annotations

import pytest
from backfill_history import BEFORE, COMPARED, STRINGS, TRICKY, assert_binned_equals_per_window_of, by_window, rule

from alerts import backfill

PLAIN = {"name": "plain", "query": 'requests | where name == "POST /score"', "frequency": "PT15M", "window": "PT15M",
         "dynamic": "medium"}
"""What STRINGS filters, written plainly: only the strings' own text decides which rows pass."""
FALLS_BACK = [
    {"name": "let", "query": "let slow = 50;\nrequests | where duration > slow", "frequency": "PT5M", "window": "PT5M",
     "dynamic": "medium"},
    {"name": "timestamp", "query": "requests | extend ['timestamp'] = timestamp + 1m", "frequency": "PT5M",
     "window": "PT5M", "dynamic": "medium"},
    {"name": "take-after-a-string-pipe", "query": 'requests | where name != "| take 3" | take 3', "frequency": "PT5M",
     "window": "PT5M", "dynamic": "medium"},
]


@pytest.mark.parametrize("body", TRICKY, ids=lambda body: body["name"])
def test_tricky_queries_are_binned_and_give_the_per_window_values(store, body):
    assert_binned_equals_per_window_of(store, body)


def test_verbatim_obfuscated_and_multi_line_strings_filter_as_their_plain_text_does(store):
    ends = backfill.window_ends(rule(STRINGS), BEFORE)[COMPARED]
    binned = by_window(backfill.binned_values(store, rule(STRINGS), ends, 30) or [])
    plain = by_window(backfill.per_window_values(store, rule(PLAIN), ends, 30))
    assert binned == plain and any(plain.values())


@pytest.mark.parametrize("body", FALLS_BACK, ids=lambda body: body["name"])
def test_what_cannot_be_binned_exactly_is_asked_window_by_window(store, body):
    found = rule(body)
    ends = backfill.window_ends(found, BEFORE)[COMPARED]
    assert backfill.binned_values(store, found, ends, 30) is None
    assert backfill.per_window_values(store, found, ends, 30)  # the per-window queries still learn it
