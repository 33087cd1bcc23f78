"""The compiled fast path (collector/ingest/_cenvelope.c through compiled.py) stores exactly what
the Python path stores: same rows field for field, same answers (errors with their index, status
and message), same counters, for the captured SDK payloads, the bench's batches, generated
envelopes (the columnar tests' strategies) and malformed bodies; and where it declines a body the
Python path answers it, with the same 4xx. The Python path is the reference: item by item
(`prepare_items(..., fast=False)`), with the compiled path switched off in the same process."""

import gzip
import json
import os
from pathlib import Path

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader import batch_body
from test_columnar import EDGES, _plain, envelopes, plain_envelopes

from collector.ingest import compiled
from collector.ingest.body import BodyError, split_items
from collector.ingest.prepare import prepare_body, prepare_items

FIXTURES = Path(__file__).parent.parent / "fixtures"
ROUTING = {"key-a": ("svc-a", True), "key-b": ("svc-b", False)}
GENERATED = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(autouse=True)
def built():
    """CI builds the extension with the normal install: there, its absence is a failure."""
    if not compiled.available():
        if os.environ.get("CI"):
            pytest.fail("collector/ingest/_cenvelope is not built: `pip install -e .` should have compiled it")
        pytest.skip("the compiled path is not built here")


def outcome(prepared) -> dict:
    """Everything a body's preparation decides, with the random item ids left out."""
    tables = {}
    for name, table in prepared.tables.items():
        rows = table.to_pylist()
        ids = [row["itemId"] for row in rows]
        assert len(set(ids)) == len(ids), "item ids must be unique"
        tables[name] = sorted(
            orjson.dumps(row, option=orjson.OPT_SORT_KEYS, default=str).replace(row["itemId"].encode(), b"<itemId>")
            for row in rows
        )
    return {"received": prepared.received, "accepted": prepared.accepted, "errors": prepared.errors,
            "stats": dict(prepared.stats), "tables": tables}


def decided(body: bytes, tmp_path: Path, native: bool) -> dict:
    """The outcome of one path, or the body's error as the client hears it."""
    try:
        if native:
            return outcome(prepare_body(body, None, ROUTING, tmp_path / "compiled"))
        return outcome(prepare_items(split_items(body), ROUTING, tmp_path / "reference", fast=False))
    except BodyError as error:
        return {"body error": (error.status_code, str(error))}


def assert_same(body: bytes, tmp_path: Path) -> dict:
    result = decided(body, tmp_path, native=True)
    assert result == decided(body, tmp_path, native=False)
    return result


def bodies(items: list) -> list[bytes]:
    """The same items as the SDKs send them: a compact array, NDJSON as json.dumps writes it
    (spaces, \\u escapes), NDJSON with blank lines and CRLF. (json, not orjson, writes them: it
    writes what orjson refuses too, NaN and nesting past 255 levels.)"""
    compact = [json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() for item in items]
    return [
        b"[" + b",".join(compact) + b"]",
        "\n".join(json.dumps(item) for item in items).encode(),
        b"\r\n\n  ".join(compact) + b"\n",
    ]


def taken(body: bytes) -> int:
    """How many items the compiled path itself took."""
    read = compiled.read_body(body, ROUTING)
    return 0 if read is None else read[0] - len(read[3])


def test_bench_batches_are_stored_alike_and_mostly_compiled(tmp_path):
    for seed in range(3):
        body = gzip.decompress(batch_body("key-a", f"op-{seed}", seed))
        result = assert_same(body, tmp_path)
        assert result["accepted"] == 500
        assert taken(body) == 500


def test_real_sdk_payloads_are_stored_alike(tmp_path):
    """Each captured body alone, in each encoding, then all together."""
    everything = []
    for path in sorted((FIXTURES / "breeze").glob("*.json")) + sorted((FIXTURES / "azmlinfsrv").glob("*.json")):
        if path.name.endswith("_http_request.json"):
            continue
        loaded = orjson.loads(path.read_bytes())
        items = loaded if isinstance(loaded, list) else [loaded]
        for item in items:
            item["iKey"] = "key-a"
        for body in bodies(items):
            assert assert_same(body, tmp_path)["accepted"] == len(items), path.name
        everything += items
    body = orjson.dumps(everything)
    result = assert_same(body, tmp_path)
    assert {"traces", "requests", "dependencies", "exceptions", "customEvents"} <= set(result["tables"])
    assert taken(body) > len(everything) // 3


@pytest.mark.parametrize("edge", sorted(EDGES))
def test_edges_are_stored_alike(tmp_path, edge):
    for body in bodies([_plain("MessageData", message="before"), EDGES[edge], _plain("EventData", name="after")]):
        assert_same(body, tmp_path)


@GENERATED
@given(st.lists(envelopes, min_size=1, max_size=6))
def test_generated_envelopes_are_stored_alike(tmp_path, items):
    for body in bodies(items):
        assert_same(body, tmp_path)


@GENERATED
@given(st.lists(plain_envelopes, min_size=1, max_size=6))
def test_generated_plain_envelopes_are_stored_alike(tmp_path, items):
    for body in bodies(items):
        assert_same(body, tmp_path)


def _exception(**base) -> dict:
    return _plain("ExceptionData", **base)


_FRAMES = [{"level": 2, "method": "outer", "fileName": "a.py", "line": 3}, {"level": 0, "method": "run", "assembly": "m"},
           {"level": 1, "method": None, "line": "7"}]
EXCEPTIONS = {
    "one with a parsed stack": _exception(exceptions=[{"typeName": "ValueError", "message": "bad", "parsedStack": _FRAMES}]),
    "a chain": _exception(severityLevel=3, handledAt="UserCode", exceptions=[
        {"id": 7, "outerId": 0, "typeName": "RuntimeError", "message": "outer", "parsedStack": _FRAMES[:1]},
        {"typeName": "KeyError", "parsedStack": [{"method": "inner"}]}]),
    "no stack at all": _exception(exceptions=[{"typeName": "E", "message": None}]),
    "an empty parsed stack": _exception(exceptions=[{"typeName": "E", "parsedStack": []}]),
    "a stack string": _exception(exceptions=[{"typeName": "ZeroDivisionError", "message": "x", "hasFullStack": True, "stack": (
        'Traceback (most recent call last):\n  File "s.py", line 3, in run\n    1/0\nZeroDivisionError: x')}]),
    "frames as strings": _exception(exceptions=[{"typeName": "E", "parsedStack": ['File "s.py", line 3, in run']}]),
    "a problem id of its own": _exception(problemId="P1", exceptions=[{"typeName": "E", "parsedStack": _FRAMES}]),
    "an empty problem id": _exception(problemId="", exceptions=[{"typeName": "E", "parsedStack": _FRAMES}]),
    "levels of every kind": _exception(exceptions=[{"typeName": "E", "parsedStack": [
        {"level": True, "method": "b"}, {"level": "0", "method": "s"}, {"level": 1.5, "method": "f"}, {"method": "none"},
        {"level": -1, "method": "neg"}, {"level": None, "method": "null"}]}]),
    "a frame that is not an object": _exception(exceptions=[{"typeName": "E", "parsedStack": [{"method": "a"}, 5]}]),
    "a type name that is a number": _exception(exceptions=[{"typeName": 5}]),
    "no exceptions": _exception(exceptions=[]),
    "an id and line of any JSON": _exception(exceptions=[{"typeName": "E", "id": {"a": [1e-07, "é"]}, "outerId": None,
                                                         "parsedStack": [{"line": [1, {"x": None}]}]}]),
    "severity as a word": _exception(severityLevel="Error", exceptions=[{"typeName": "E"}]),
}


@pytest.mark.parametrize("shape", sorted(EXCEPTIONS))
def test_exceptions_are_stored_alike(tmp_path, shape):
    """The exception chain, its details and the columns taken from its first and last entries."""
    for body in bodies([EXCEPTIONS[shape], _plain("MessageData", message="after")]):
        assert_same(body, tmp_path)


PLAIN = orjson.dumps(_plain("MessageData", message="m", properties={"Contents": {"input": [0.5, 1e-07, 3]}}))
MALFORMED = {
    "empty": b"",
    "blank lines only": b"\n \r\n",
    "a line that is not JSON": PLAIN + b"\n{not json}\n" + PLAIN,
    "two values on a line": PLAIN + b" " + PLAIN,
    "a truncated array": b"[" + PLAIN + b",",
    "a trailing comma": b"[" + PLAIN + b",]",
    "garbage after the array": b"[" + PLAIN + b"] x",
    "a lone surrogate": PLAIN[:-1] + b',"x":"\\ud800"}',
    "invalid UTF-8": PLAIN.replace(b'"m"', b'"\xff"'),
    "NaN as Python writes it": PLAIN.replace(b"0.5", b"NaN"),
    "a number beyond a double": PLAIN.replace(b"0.5", b"1e400"),
    "an integer beyond 64 bits": PLAIN.replace(b"0.5", b"123456789012345678901234567890"),
    "an item that is a number": PLAIN + b"\n5\n" + PLAIN,
    "an array of arrays": b"[[1], " + PLAIN + b"]",
    "a repeated key": PLAIN[:-1] + b',"iKey":"key-b"}',
    "a repeated property": PLAIN.replace(b'"Contents"', b'"a":1,"a":"2","Contents"'),
    "escaped keys and values": PLAIN.replace(b'"iKey"', b'"i\\u004bey"').replace(b'"m"', b'"\\u00e9\\n\\ud83d\\ude00\\/\\u0001"'),
    "control characters": PLAIN.replace(b'"m"', b'"a\\tb\\u001fc\\u007f"'),
    "deep nesting": PLAIN.replace(b"[0.5", b"[" * 120 + b"0.5" + b"]" * 119),
    "form feed around": b"\x0c" + PLAIN + b"\x0c",
    "nothing but an array": b"[]",
}
TAKEN = orjson.dumps(_plain("MessageData", message="m", properties={"Contents": {"input": [0.5, 3]}}))
LINES = {  # NDJSON read whole, not line by line: each case and how many items the C parse takes
    "an item spanning two lines": (TAKEN + b"\n" + TAKEN.replace(b'"data":', b'"data":\n') + b"\n" + TAKEN, 0),
    "an item split inside a string": (TAKEN + b"\n" + TAKEN.replace(b'"m"', b'"m\nn"'), 0),
    "an unclosed string at a line's end": (TAKEN + b'\n{"iKey":"key-a\n' + TAKEN, 0),
    "an item then a comma": (TAKEN + b",\n" + TAKEN, 0),
    "spaces, tabs and CR after items": (TAKEN + b" \t\r\n\t " + TAKEN + b" \r\n\n" + TAKEN, 3),
    "an array's item spanning lines": (b"[\n" + TAKEN.replace(b'"data":', b'"data":\n') + b",\n" + TAKEN + b"\n]", 2),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_bodies_are_answered_alike(tmp_path, case):
    """The same 4xx for the body, or the same per-item errors with the same messages."""
    assert_same(MALFORMED[case], tmp_path)


@pytest.mark.parametrize("case", sorted(LINES))
def test_lines_are_split_as_the_python_path_splits_them(tmp_path, case):
    body, compiled_items = LINES[case]
    assert_same(body, tmp_path)
    assert taken(body) == compiled_items


@GENERATED
@given(st.integers(0, len(PLAIN) * 3), st.binary(max_size=3), st.integers(0, 3))
def test_mutated_bodies_are_answered_alike(tmp_path, at, inserted, removed):
    """Bytes cut out or slipped into a valid NDJSON body anywhere: whatever it then is, both
    paths read it alike."""
    body = b"\n".join([PLAIN, orjson.dumps(_plain("RequestData", id="1", name="n", duration="00:00:00.010",
                                                  responseCode="200", success=True)), PLAIN])
    assert_same(body[:at] + inserted + body[at + removed:], tmp_path)


@GENERATED
@given(st.integers(0, len(TAKEN) * 3), st.binary(max_size=3), st.integers(0, 3))
def test_mutated_bodies_the_c_parse_reads_are_answered_alike(tmp_path, at, inserted, removed):
    """The same, on lines the C parse reads (PLAIN's 1e-07 sends the body above to the Python path
    whole): spaces, newlines, quotes slipped in or cut out where each item ends and the next begins."""
    body = b"\n".join([TAKEN, orjson.dumps(_plain("RequestData", id="1", name="n", duration="00:00:00.010",
                                                   responseCode="200", success=True)), TAKEN])
    assert_same(body[:at] + inserted + body[at + removed:], tmp_path)


def test_switched_off_by_the_environment(monkeypatch):
    """INSIGHTS_INGEST_PURE_PYTHON=1 sends every body to the Python path (what README tells)."""
    monkeypatch.setenv(compiled.PURE_PYTHON_ENV, "1")
    assert compiled._load() is None
    monkeypatch.delenv(compiled.PURE_PYTHON_ENV)
    assert compiled._load() is not None


def _traces_of(*ikeys: str) -> list[dict]:
    return [{**_plain("MessageData", message=f"m{n}"), "iKey": ikey} for n, ikey in enumerate(ikeys)]


@pytest.mark.parametrize("ikeys", [
    ("KEY-A", "key-a", "KEY-A"), ("key-b", "key-b"), ("key-unknown", "key-unknown"),
    ("key-a", "KEY-A", "key-b", "key-unknown", "key-a"), ("key-b", "key-a"),
])
def test_tables_of_one_service_or_several_are_routed_alike(tmp_path, ikeys):
    """A table whose rows share one iKey (an SDK's batch) is routed by that key alone, and one
    whose keys differ row by row: stored, dropped (disabled) or refused (unknown) alike."""
    for body in bodies(_traces_of(*ikeys)):
        result = assert_same(body, tmp_path)
        stored = sum(ikey.lower() == "key-a" for ikey in ikeys)
        assert len(result["tables"].get("traces", [])) == stored
        assert taken(body) == stored


def test_properties_needing_escapes_are_stored_alike(tmp_path):
    """customDimensions' keys and values with quotes, backslashes, control characters, slashes and
    non-ASCII text, escaped as the SDKs write them or not at all where JSON allows."""
    properties = {'say "hi"': 'back\\slash', "tab\there": "new\nline\u0001", "path": "a/b", "é": "ü😀", "": ""}
    for body in bodies([_plain("MessageData", message="m", properties=properties),
                        _plain("EventData", name="e", properties={"nested": {'k"': ["\u001f", "x/y"]}})]):
        assert assert_same(body, tmp_path)["accepted"] == 2
        assert taken(body) == 2
