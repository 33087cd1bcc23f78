"""The query budget at the engine (collector/kql/budget.py, generators.py, sandbox.py): what a query
may generate, how long and deep its text may be, and that compilation obeys the deadline.

The same limits over HTTP, against a real collector, are in tests/security/test_queries.py."""

from __future__ import annotations

import time

import duckdb_kql.translate as translate
import pytest

from collector.kql import KqlError, run_query
from collector.kql import generators as generators_module
from collector.kql.budget import MAX_NESTING, MAX_OPERATORS, MAX_QUERY_CHARS, MAX_RANGE_ROWS, check_shape
from collector.kql.errors import LIMIT, TIMEOUT

from .store import build


@pytest.fixture(scope="module")
def con():
    connection = build()
    yield connection
    connection.close()


def _rows(con, text: str, **kwargs) -> list[list]:
    return run_query(con.cursor(), text, services=["a"], **kwargs).rows


def _limit(con, text: str, **kwargs) -> KqlError:
    with pytest.raises(KqlError) as caught:
        run_query(con.cursor(), text, services=["a"], **kwargs)
    return caught.value


def test_the_bounded_renderings_stay_registered():
    """An upgrade of duckdb-kql that moves these hooks must fail here, not bring back the unbounded
    renderings (a series built as one list, an unlimited repeat)."""
    generators_module.register()
    assert translate.render_range is generators_module.render_range
    assert translate._SPECIAL_FORMS["strrep"] is generators_module._render_strrep
    for builder in ("strcat", "strcat_delim", "array_concat", "pack_array", "bag_pack", "replace_string",
                    "replace_regex"):
        assert translate._SPECIAL_FORMS[builder].__qualname__ == "_bounded.<locals>.render", builder


@pytest.mark.parametrize(("text", "expected"), [
    ("range x from 1 to 5 step 2", [[1], [3], [5]]),
    ("range x from 3 to 1 step -1", [[3], [2], [1]]),
    ("range x from 5 to 1 step 1", []),
    ("range x from int(null) to 3 step 1", []),
    ("range t from datetime(2026-01-01) to datetime(2026-01-01 12:00) step 6h",
     [["2026-01-01T00:00:00Z"], ["2026-01-01T06:00:00Z"], ["2026-01-01T12:00:00Z"]]),
    ("let n = 3; range x from 1 to n step 1 | summarize sum(x)", [[6]]),
    ("range x from 1 to 3 step 1 | join kind=inner (range x from 2 to 4 step 1) on x | count", [[2]]),
    (f"range x from 1 to {MAX_RANGE_ROWS} step 1 | count", [[MAX_RANGE_ROWS]]),
    ("print s = strrep('ab', 3)", [["ababab"]]),
    ("print n = strlen(strrep('a', 5000))", [[1024]]),  # Kusto repeats at most 1024 times
    ("print s = strcat('a', 1, true, 1h)", [["a1True01:00:00"]]),
    ("print s = strcat_delim('-', 'a', 'b', 'c')", [["a-b-c"]]),
    ("print s = replace_string('abab', 'b', 'xyz')", [["axyzaxyz"]]),
    ("print s = replace_regex('abc', '(b)', '[$1]')", [["a[$1]c"]]),
    ("print a = array_concat(dynamic([1]), dynamic([2]))", [["[1,2]"]]),
    ("print n = strlen(strcat(strrep('abcdefgh', 1024), strrep('abcdefgh', 1024)))", [[16384]]),
])
def test_generators_answer_as_before_within_the_caps(con, text, expected):
    assert _rows(con, text) == expected


@pytest.mark.parametrize(("text", "words"), [
    (f"range x from 1 to {MAX_RANGE_ROWS + 1} step 1 | count", "range would generate more than 10,000,000 rows"),
    ("range x from 1 to 200000000 step 1 | summarize dcount(x)", "range would generate more than"),
    ("range t from datetime(2000-01-01) to datetime(2026-01-01) step 1s", "range would generate more than"),
    ("range x from 1 to 3 step 0", "the step is 0"),
    ("print n = strlen(strrep(strrep(strrep('a', 1024), 1024), 1024))", "strrep would build a value longer than"),
    # Doubling by extension: twenty steps make 8 KiB 8 GiB, inside one chunk of rows.
    ("print s = strrep('abcdefgh', 1024)" + " | extend s = strcat(s, s)" * 20,
     "strcat would build a value longer than 65,536 bytes"),
    ("range x from 1 to 100 step 1 | extend s = strcat_delim(strrep('ab', 1024), " + ", ".join(["'x'"] * 40) + ")",
     "strcat_delim would build a value longer than"),
    ("print s = replace_string(strrep('a', 1024), 'a', strrep('b', 1024))", "replace_string would build"),
    ("print s = replace_regex(strrep('a', 1024), 'a', strrep('b', 100))", "replace_regex would build"),
    ("print a = pack_array(" + ", ".join(["strrep('abcdefgh', 1024)"] * 9) + ")", "pack_array would build"),
])
def test_generating_past_a_cap_is_refused_before_anything_is_generated(con, text, words):
    started = time.monotonic()
    error = _limit(con, text)
    assert error.code == LIMIT and words in error.message
    assert time.monotonic() - started < 10  # generating the value would take minutes and gigabytes


def test_the_text_is_measured_before_it_is_compiled():
    check_shape("traces" + " | where x > 1" * MAX_OPERATORS)
    check_shape("print x = " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING)
    check_shape("print x = '" + "(" * 1000 + "|" * 1000 + "' // ((((|||\n")  # text, not syntax
    with pytest.raises(KqlError) as deep:
        check_shape("print x = " + "(" * 3000 + "1" + ")" * 3000)
    assert (deep.value.code, deep.value.line, deep.value.pos) == (LIMIT, 1, 11 + MAX_NESTING)
    assert f"more than {MAX_NESTING} deep" in deep.value.message
    with pytest.raises(KqlError) as chained:
        check_shape("traces" + "\n| where x > 1" * 500)
    assert (chained.value.line, chained.value.pos) == (MAX_OPERATORS + 2, 1)
    assert f"more than {MAX_OPERATORS} operators" in chained.value.message
    with pytest.raises(KqlError) as long:
        check_shape("print x = '" + "a" * MAX_QUERY_CHARS + "'")
    assert f"the limit is {MAX_QUERY_CHARS:,}" in long.value.message


def test_compilation_stops_at_the_deadline(con):
    """Found by the attack: a long `or` chain parsed for a minute, outside the timeout."""
    text = "traces | where " + " or ".join(f"message == 'm{i}'" for i in range(2800))
    started = time.monotonic()
    error = _limit(con, text, timeout_s=1.5)
    assert error.code == TIMEOUT and "while compiling it" in error.message and "1.5 s" in error.message
    assert time.monotonic() - started < 3.5
    assert _rows(con, "traces | count") == [[3]]  # and the next query compiles as ever


def test_a_translation_that_explodes_is_stopped_by_the_compile_memory_cap(con):
    """Nested `tostring` calls make the translator's SQL grow exponentially (eight took gigabytes)."""
    error = _limit(con, "print x = " + "tostring(" * 8 + "1" + ")" * 8)
    assert error.code == LIMIT and "compiling the query needs more memory than it is allowed" in error.message
    assert _rows(con, "print x = tostring(tostring(1))") == [["1"]]


def test_a_batch_deadline_already_past_refuses_at_once(con):
    error = _limit(con, "traces | count", deadline=time.monotonic() - 1)
    assert error.code == TIMEOUT
