"""Generated queries, half well-formed pipelines and half mutated or random text: the engine
answers each with a QueryResult or a KqlError, never anything else; the API never with a 5xx."""

from __future__ import annotations

import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.kql import KqlError, QueryResult, run_query

from .store import build

TABLES = ["traces", "requests", "exceptions", "customEvents", "nosuch", "services"]
COLUMNS = ["timestamp", "message", "name", "duration", "success", "resultCode", "customDimensions",
           "severityLevel", "operation_Id", "nosuch", "_service", "customDimensions.Contents",
           'customDimensions["Request Id"]']
LITERALS = st.one_of(
    st.integers(-10**6, 10**6).map(str),
    st.floats(allow_nan=False, allow_infinity=False, width=32).map(repr),
    st.text(max_size=8).map(lambda s: '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'),
    st.sampled_from(["true", "false", "1h", "5m", "datetime(2026-01-01)", "dynamic(null)", "now()",
                     "ago(1d)", "long(null)", "dynamic([1,2])"]),
)
BINARY = ["==", "!=", "<", ">", "<=", ">=", "=~", "!~", "contains", "!contains", "has", "!has",
          "startswith", "endswith", "has_cs", "matches regex", "+", "-", "*", "/", "%", "and", "or"]
FUNCTIONS = ["tostring", "toint", "tolong", "todouble", "tobool", "todatetime", "totimespan",
             "strlen", "tolower", "toupper", "isempty", "isnull", "array_length", "bag_keys",
             "parse_json", "abs", "sqrt", "log", "round", "bin", "startofday", "floor", "strcat",
             "substring", "split", "iff", "coalesce", "nosuchfn"]
AGGREGATES = ["count()", "dcount({c})", "sum({c})", "avg({c})", "min({c})", "max({c})",
              "percentile({c}, 95)", "percentiles({c}, 50, 90)", "make_list({c})", "make_set({c})",
              "countif({c} > 1)", "minif({c}, true)", "arg_max({c}, *)", "take_any({c})", "stdev({c})"]


@st.composite
def expressions(draw, depth=0):
    if depth > 2 or draw(st.booleans()):
        return draw(st.one_of(st.sampled_from(COLUMNS), LITERALS))
    kind = draw(st.sampled_from(["binary", "call", "not", "in", "between"]))
    left = draw(expressions(depth + 1))
    if kind == "binary":
        return f"({left} {draw(st.sampled_from(BINARY))} {draw(expressions(depth + 1))})"
    if kind == "call":
        args = draw(st.lists(expressions(depth + 1), min_size=1, max_size=3))
        return f"{draw(st.sampled_from(FUNCTIONS))}({', '.join(args)})"
    if kind == "not":
        return f"not({left})"
    if kind == "in":
        return f"{left} in ({', '.join(draw(st.lists(LITERALS, min_size=1, max_size=3)))})"
    return f"{left} between ({draw(LITERALS)} .. {draw(LITERALS)})"


@st.composite
def operators(draw):
    column = draw(st.sampled_from(COLUMNS))
    choice = draw(st.sampled_from([
        "where", "project", "extend", "summarize", "take", "top", "sort", "distinct", "count",
        "project-away", "project-rename", "mv-expand", "join", "union", "render", "getschema",
        "parse", "search", "as", "project-reorder",
    ]))
    expr = draw(expressions())
    aggregate = draw(st.sampled_from(AGGREGATES)).format(c=column)
    return {
        "where": f"where {expr}",
        "project": f"project {column}, x = {expr}",
        "extend": f"extend x = {expr}",
        "summarize": f"summarize {aggregate} by {draw(st.sampled_from(['bin(timestamp, 5m)', column, 'x = ' + expr]))}",
        "take": f"take {draw(st.integers(-1, 20))}",
        "top": f"top {draw(st.integers(0, 5))} by {column} {draw(st.sampled_from(['asc', 'desc', '']))}",
        "sort": f"sort by {column} {draw(st.sampled_from(['asc nulls first', 'desc nulls last', '']))}",
        "distinct": f"distinct {column}",
        "count": "count",
        "project-away": f"project-away {column}",
        "project-rename": f"project-rename y = {column}",
        "mv-expand": f"mv-expand {column}",
        "join": f"join kind={draw(st.sampled_from(['inner', 'leftouter', 'leftanti', 'rightsemi', 'innerunique']))} "
                f"({draw(st.sampled_from(TABLES))}) on {column}",
        "union": f"union {draw(st.sampled_from(TABLES))}",
        "render": "render timechart",
        "getschema": "getschema",
        "parse": f'parse {column} with * "=" v',
        "search": f"search {draw(LITERALS)}",
        "as": "as T",
        "project-reorder": f"project-reorder {column}",
    }[choice]


@st.composite
def pipelines(draw):
    source = draw(st.sampled_from(TABLES + ["print x = 1", "range x from 1 to 3 step 1"]))
    ops = draw(st.lists(operators(), max_size=4))
    text = " | ".join([source, *ops])
    if draw(st.integers(0, 4)) == 0 and text:  # mutate: cut, or splice in noise
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.text(max_size=6)) + text[cut:]
    return text


QUERIES = st.one_of(pipelines(), pipelines(), st.text(max_size=40))


@pytest.fixture(scope="module")
def con():
    connection = build()
    yield connection
    connection.close()


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_engine_answers_or_names_the_problem(con, query):
    try:
        result = run_query(con.cursor(), query, services=["a"], timeout_s=5, max_rows=1000)
    except KqlError as error:
        assert error.code and error.message
        return
    assert isinstance(result, QueryResult)
    assert all(len(row) == len(result.columns) for row in result.rows)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=QUERIES)
def test_api_never_answers_5xx(api, query):
    response = api.post("/v1/apps/default/query", json={"query": query, "timespan": "P7D"})
    assert response.status_code < 500 or response.status_code == 504, response.text
    if response.status_code >= 400:
        assert response.json()["error"]["code"]


@pytest.fixture(scope="module")
def api():
    import httpx

    from .server import serve_router
    from .test_api import _rows

    with serve_router(time.time(), _rows) as target, httpx.Client(
            base_url=target.url, headers={"x-api-key": target.mine["api_key"]}, timeout=30) as client:
        yield client


def test_a_control_character_in_a_search_term_is_named_not_a_crash(con):
    """Found by the generator above: `search "\\x08"` once escaped as a ValueError (a 500)."""
    with pytest.raises(KqlError) as error:
        run_query(con, 'traces | search "\x08"', services=["svc-a"])
    assert "control character U+0008" in error.value.message
