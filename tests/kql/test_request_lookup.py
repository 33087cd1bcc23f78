"""Finding one request through the lookup index answers exactly what the full scan answers.

The property test writes random rows through a real store's writer (so the index is kept as in
the collector) and runs random lookups twice, narrowed by the index and not, over ids that are
present, absent, in several tables, in other case, next to characters that end a term or do not
(`-`, `_`, `é`, `İ`, a newline...), and spelt with `ſ` or the Kelvin sign (which case-fold to
ASCII). The last test goes through a real collector process: rows ingested over HTTP and imported,
retention run, and the narrowed answer held equal to the same query in a form that is not
narrowed.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.kql import engine, has_chains, lookup, run_query, scope, translation
from collector.settings import CollectorSettings
from collector.store import lookup_index
from collector.store.database import Store
from collector.store.schema import TABLES

SERVICE = "svc-a"
IDS = ["4bf92f3577b34da6a3ce929d0e0e4736", "req12345678", "a1b2c3d4e5", "00000100000000000001", "skx12345678"]
"""Ids the rows and the queries share: a trace id, a request id, a GUID part, a run of zeros, and one
with `s` and `k` (which `ſ` and the Kelvin sign fold to)."""
NEIGHBOURS = ["", " ", "-", "_", ".", "é", "İ", "\n", "x", "/", '"', "ſ", "9"]


def _spelling(draw, base: str) -> str:
    """*base* in some case, perhaps with `ſ`/`K` for `s`/`k`, perhaps between neighbours."""
    word = "".join(draw(st.sampled_from([c, c.upper()])) if c.isalpha() else c for c in base)
    if draw(st.booleans()):
        word = word.replace("s", "ſ").replace("K", "\u212a")
    return draw(st.sampled_from(NEIGHBOURS)) + word + draw(st.sampled_from(NEIGHBOURS))


@st.composite
def values(draw) -> str | None:
    choice = draw(st.integers(0, 3))
    if choice == 0:
        return None
    if choice == 1:
        return draw(st.text(alphabet="ab9 -_é\nſ", max_size=6))
    return _spelling(draw, draw(st.sampled_from(IDS)))


@st.composite
def rows(draw, table: str) -> dict:
    row = {"timestamp": int(time.time() * 1e6), "_service": draw(st.sampled_from([SERVICE, "svc-b"])),
           "itemType": TABLES[table].item_type}
    for column in ("operation_Id", "itemId", "message" if table != "requests" else "id"):
        row[column] = draw(values())
    dims = {key: draw(values()) for key in draw(st.sets(st.sampled_from(["x-request-id", "Client Request Id", "other"])))}
    if draw(st.booleans()):
        dims["n"] = draw(st.sampled_from([1e5, 12345678901, 0.5]))
    row["customDimensions"] = json.dumps(dims, ensure_ascii=draw(st.booleans()))
    return row


QUERIES = [
    'search "{id}"',
    'search in (traces, requests) "{id}"',
    'union traces, requests, exceptions | where operation_Id == "{id}"',
    'union * | where operation_Id in ("{id}", "{other}") | project operation_Id, itemId',
    'requests | where itemId == "{id}" | count',
    'union traces, requests | where customDimensions["x-request-id"] == "{id}"',
    'union traces, requests | where customDimensions["Client Request Id"] =~ "{id}"',
    'traces | where message has "{id}" | project message',
    'union withsource=T traces, exceptions | where message has "{id}" or operation_Id == "{other}"',
    'traces | where message has_cs "{id}" and itemType == "trace"',
    'union * | where customDimensions has "{id}" | summarize count() by itemType',
]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    opened = Store(tmp_path_factory.mktemp("lookup") / "data")
    yield opened
    opened.close()


def _answers(store: Store, kql: str, monkeypatch) -> tuple[list, list, str]:
    """(narrowed rows, full-scan rows, the narrowed SQL)."""
    with store.reader() as con:
        narrowed = run_query(con, kql, services=[SERVICE])
        with monkeypatch.context() as patch:
            patch.setattr(engine.lookup, "narrowed", lambda scope, *_: scope)
            full = run_query(con, kql, services=[SERVICE])
    return sorted(map(repr, narrowed.rows)), sorted(map(repr, full.rows)), narrowed.sql


def _was_narrowed(sql: str) -> bool:
    return '"_seq" IN (' in sql or " AND FALSE)" in sql or " AND FALSE AND (" in sql  # no candidate: FALSE


def _folded_equal(store: Store, kql: str) -> bool:
    """The SQL of *kql* with its `has` chains folded (has_chains.py) answers what the
    translator's own SQL answers, over every service's rows."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(translation, "fold_has", lambda sql: sql)
        plain = translation.translate(kql, datetime(2026, 1, 1))
    folded = has_chains.fold(plain.sql)
    with store.reader() as con:
        answers = [sorted(map(repr, con.execute(scope.apply(sql, scope.Scope(None), ()), plain.parameters).fetchall()))
                   for sql in (plain.sql, folded)]
    return answers[0] == answers[1]


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(data=st.data())
def test_narrowed_answers_equal_the_full_scan(store, monkeypatch, data):
    batch = {table: data.draw(st.lists(rows(table), max_size=4)) for table in ("traces", "requests", "exceptions")}
    store.writer.write(tables={t: TABLES[t].to_arrow(r) for t, r in batch.items() if r}).result()
    template = data.draw(st.sampled_from(QUERIES))
    needle = data.draw(st.one_of(st.builds(lambda d: d, st.sampled_from(IDS)),
                                 st.builds(lambda d: d.upper() + "-x", st.sampled_from(IDS)),
                                 st.just("absent00000000"), st.just("zz-" + IDS[0])))
    kql = template.format(id=needle, other=data.draw(st.sampled_from(IDS)))
    narrowed, full, sql = _answers(store, kql, monkeypatch)
    assert _was_narrowed(sql)
    assert narrowed == full
    assert _folded_equal(store, kql)


@pytest.mark.parametrize("kql", [
    'traces | where message contains "{id}"',
    'traces | where message !has "{id}"',
    'requests | where id == "{id}" | join (requests) on operation_Id',
    'let x = 1; search "{id}"',
    'traces | extend m = message | where m has "{id}"',
    'traces | where message has "short1"',
])
def test_what_the_index_cannot_answer_is_scanned(store, kql):
    with store.reader() as con:
        result = run_query(con, kql.format(id=IDS[0]), services=[SERVICE])
    assert not _was_narrowed(result.sql)


def test_terms_a_value_must_hold():
    assert lookup.best_term("4bf92f35-77b3-4da6-a3ce-929d0e0e4736") == "929d0e0e4736"
    assert lookup.best_term("ab-00000000000000000001-x9y8z7w6") == "x9y8z7w6"
    assert lookup.best_term("f7f18139-a199-463f-a802-000000000123") == "f7f18139"
    assert lookup.best_term("00000000000000000001") is None  # a counter's padding: not indexed
    assert lookup.best_term("é12345678") is None  # bounded by a letter: the row's term may be longer
    assert lookup.best_term("\nreq12345678") == "req12345678"
    assert lookup.best_term("\nreq12345678", escaped=True) is None  # stored as `\nreq...`
    assert lookup.best_term("contents") is None and lookup.best_term("1234567") is None


def test_retention_and_reopening_keep_the_index_whole(tmp_path, monkeypatch):
    data = tmp_path / "data"
    opened = Store(data)
    old = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=40)
    trace = TABLES["traces"]
    rows_ = [{"timestamp": int((old if i % 2 else datetime.now(UTC).replace(tzinfo=None)).timestamp() * 1e6),
              "message": f"call {IDS[0]} {i}", "_service": SERVICE, "itemType": "trace"} for i in range(10)]
    opened.writer.write(tables={"traces": trace.to_arrow(rows_)}).result()
    opened.close()  # the entries go from memory into a run
    opened = Store(data)
    deleted = opened.exports.delete_expired(SERVICE, ["traces"], datetime.now(UTC).replace(tzinfo=None) - timedelta(days=30), {})
    assert deleted == 5
    with opened.reader() as con:
        entries = con.execute("SELECT count(*) FROM lookup_terms").fetchone()[0]
    assert entries == 5  # the deleted rows' entries went from the run in the same commit
    opened.close()
    # An index dropped (or built by a DuckDB whose hash differs) is rebuilt whole at open.
    reopened = Store(data)
    with reopened.reader() as con:
        con.execute("DELETE FROM lookup_state")
    reopened.close()
    again = Store(data)
    try:
        narrowed, full, sql = _answers(again, f'search "{IDS[0]}"', monkeypatch)
        assert _was_narrowed(sql) and len(narrowed) == 5 and narrowed == full
    finally:
        again.close()


def test_compaction_keeps_every_term(tmp_path, monkeypatch):
    monkeypatch.setattr(lookup_index, "RUN_ROWS", 3)
    opened = Store(tmp_path / "data")
    try:
        for i in range(4):
            rows_ = [{"timestamp": int(time.time() * 1e6), "operation_Id": f"{IDS[0]}{i}{j}", "_service": SERVICE,
                      "itemType": "request"} for j in range(2)]
            opened.writer.write(tables={"requests": TABLES["requests"].to_arrow(rows_)}).result()
        with opened.reader() as con:
            sorted_runs = con.execute("SELECT count(*) FROM lookup_terms").fetchone()[0]
        assert sorted_runs >= 4
        for i in range(4):
            narrowed, full, _ = _answers(opened, f'requests | where operation_Id == "{IDS[0]}{i}1"', monkeypatch)
            assert len(narrowed) == 1 and narrowed == full
    finally:
        opened.close()


def test_a_real_collector_finds_one_request(collector):
    service = collector.create_service("lookup")["name"]
    operation = uuid.uuid4().hex
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    lines = [json.dumps({"itemType": "request", "timestamp": now, "operation_Id": operation, "id": f"r{i}",
                         "name": "POST /score", "success": True, "resultCode": "200", "duration": 1.0,
                         "customDimensions": {"x-request-id": f"req-{operation[:12]}-{i}"}}).encode()
             for i in range(3)]
    lines += [json.dumps({"itemType": "trace", "timestamp": now, "operation_Id": uuid.uuid4().hex,
                          "message": f"retrying {operation.upper()}", "severityLevel": 1}).encode()]
    collector.import_rows(service, lines)
    pairs = [
        (f'search "{operation}"', f'let x = 1; search "{operation}"'),
        (f'union * | where operation_Id == "{operation}"', f'let x = 1; union * | where operation_Id == "{operation}"'),
        (f'requests | where customDimensions["x-request-id"] == "req-{operation[:12]}-1"',
         f'let x = 1; requests | where customDimensions["x-request-id"] == "req-{operation[:12]}-1"'),
    ]
    for narrowed, full in pairs:
        found = collector.query(narrowed, service)
        assert found and sorted(map(repr, found)) == sorted(map(repr, collector.query(full, service)))
    assert len(collector.query(pairs[0][0], service)) == 4


def test_a_store_without_the_index_scans_and_gets_it_back(tmp_path, monkeypatch):
    assert not CollectorSettings.from_env(tmp_path, environ={"INSIGHTS_LOOKUP_INDEX": "off"}).lookup_index
    assert CollectorSettings.from_env(tmp_path, environ={}).lookup_index
    data = tmp_path / "data"
    rows_ = [{"timestamp": int(time.time() * 1e6), "operation_Id": IDS[0], "_service": SERVICE, "itemType": "request"}]
    without = Store(data, keep_lookup_index=False)  # INSIGHTS_LOOKUP_INDEX=off
    without.writer.write(tables={"requests": TABLES["requests"].to_arrow(rows_)}).result()
    narrowed, full, sql = _answers(without, f'requests | where operation_Id == "{IDS[0]}"', monkeypatch)
    without.close()
    assert not _was_narrowed(sql) and len(narrowed) == 1 and narrowed == full
    again = Store(data)  # kept again: rebuilt from the rows at open
    try:
        narrowed, full, sql = _answers(again, f'requests | where operation_Id == "{IDS[0]}"', monkeypatch)
        assert _was_narrowed(sql) and len(narrowed) == 1 and narrowed == full
    finally:
        again.close()


def test_a_name_dynamic_in_one_table_is_text_in_another(tmp_path, monkeypatch):
    """`data` is a dependency's command text and a model input's JSON: indexed as each table has it."""
    opened = Store(tmp_path / "data")
    try:
        row = {"timestamp": int(time.time() * 1e6), "_service": SERVICE, "itemType": "dependency",
               "data": f"SELECT * FROM t WHERE id = '{IDS[1]}'", "operation_Id": IDS[0]}
        opened.writer.write(tables={"dependencies": TABLES["dependencies"].to_arrow([row])}).result()
        for kql in (f'dependencies | where data has "{IDS[1]}"', f'dependencies | where operation_Id == "{IDS[0]}"'):
            narrowed, full, sql = _answers(opened, kql, monkeypatch)
            assert _was_narrowed(sql) and len(narrowed) == 1 and narrowed == full
    finally:
        opened.close()
