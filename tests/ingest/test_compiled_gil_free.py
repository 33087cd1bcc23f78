"""The compiled path parses without the GIL (_cenvelope.c: its own float repr, strtod_l, no Python
object until the parse is over) and the collector prepares large bodies in threads
(collector/ingest/threads.py). Held to the Python path, the reference, field for field: floats of
every shape in customDimensions (written as Python's repr, byte for byte), nested in them (as
orjson writes them), in measurements and in metric values, in each text form a sender may use;
and bodies prepared at once from several threads store what each stores alone."""

import gzip
import math
import random
import struct
import sys
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from loader import batch_body
from test_columnar import _plain
from test_compiled_path import ROUTING, assert_same, bodies, built, outcome, taken  # noqa: F401 (built: autouse)

from collector.ingest.body import split_items
from collector.ingest.prepare import prepare_body, prepare_compiled, prepare_items
from collector.ingest.threads import MOST_LEFT

FLOATS = st.floats(allow_nan=False, allow_infinity=False)


def _texts(value: float) -> list[str]:
    """The JSON number texts a sender may write for the value: Python's repr, C's %.17g, the
    exponent without its sign or leading zero (1e16, 1e-5), and fixed notation where short."""
    texts = [repr(value), f"{value:.17g}", repr(value).replace("e+", "e").replace("e-0", "e-")]
    fixed = f"{value:.20f}".rstrip("0")
    if len(fixed) <= 40:
        texts.append(fixed + ("0" if fixed.endswith(".") else ""))
    return texts


def _items(text: str) -> list[bytes]:
    """Items holding the number text: a property (stored as a string: the repr), a property's
    nested value (stored as orjson writes it), a measurement, a metric's value."""
    items = [
        _plain("MessageData", message="m", properties={"f": "__F__"}),
        _plain("MessageData", message="m", properties={"nested": {"v": ["__F__", {"w": "__F__"}]}, "g": "__F__"}),
        _plain("EventData", name="e", properties={"f": "__F__"}, measurements={"m": "__F__"}),
        _plain("MetricData", metrics=[{"name": "x", "value": "__F__"}], properties={"f": "__F__"}),
        _plain("RequestData", id="1", name="n", duration="00:00:00.010", responseCode="200",
               properties={"f": "__F__"}, measurements={"m": "__F__"}),
    ]
    return [body.replace(b'"__F__"', text.encode()) for body in bodies(items)]


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(FLOATS)
def test_floats_of_every_shape_are_stored_alike(tmp_path, value):
    for text in _texts(value):
        for body in _items(text):
            assert_same(body, tmp_path)


def _many_doubles(count: int) -> list[float]:
    rng = random.Random(7)
    values = [struct.unpack("<d", rng.getrandbits(64).to_bytes(8, "little"))[0] for _ in range(count)]
    values += [round(rng.uniform(-1e6, 1e6), rng.randint(0, 12)) for _ in range(count)]
    values += [rng.random() * 10.0 ** rng.randint(-30, 30) for _ in range(count)]
    values += [0.0, -0.0, 0.1, 1e-5, 1e-4, 1e15, 1e16, 9999999999999998.0, 2.0 ** 60, 2.0 ** -20, 5e-324, 2.2250738585072014e-308]
    return [v for v in values if math.isfinite(v)]


def test_many_doubles_take_the_compiled_path_and_are_stored_alike(tmp_path):
    """Every double written with an exponent of at most two characters (e16, e-5: the C parse
    declines a body with a longer one whole) is taken there, its repr written there: powers of two
    and subnormals too (Ryu's digits, _cenvelope_ryu.h)."""
    values = _many_doubles(300)
    texts = [_short_text(v) for v in values]
    short = [(v, t) for v, t in zip(values, texts) if t is not None]
    for start in range(0, len(short), 100):
        chunk = short[start:start + 100]
        body = b"\n".join(_items(text)[1].split(b"\n")[0] for _, text in chunk)
        assert_same(body, tmp_path)
        assert taken(body) == len(chunk)


def _short_text(value: float) -> str | None:
    """The value as a JSON number the C parse reads (repr's digits, its exponent at most two
    characters, else in fixed notation of at most 40); None where there is none."""
    text = repr(value).replace("e+", "e").replace("e-0", "e-")
    if "e" not in text or len(text.split("e")[1]) <= 2:
        return text
    fixed = format(Decimal(repr(value)), "f")
    return fixed if len(fixed) <= 40 else None


def _double(bits: int) -> float:
    return struct.unpack("<d", bits.to_bytes(8, "little"))[0]


EDGE_DOUBLES = sorted({
    *(2.0 ** e for e in range(-1074, 1024)), *(math.nextafter(2.0 ** e, 0) for e in range(-1073, 1024)),
    *(math.nextafter(2.0 ** e, math.inf) for e in range(-1074, 1023)),
    5e-324, sys.float_info.max, sys.float_info.min, math.nextafter(sys.float_info.min, 0), 1e16, math.nextafter(1e16, 0),
    math.nextafter(1e16, math.inf), 1e-4, math.nextafter(1e-4, 0), math.nextafter(1e-4, 1), 9007199254740993.0, 0.1, 0.2, 0.3,
    *(2.0 ** -1074 * k for k in (2, 3, 5, 7, 10, 99, 12345, 2 ** 51 - 1, 2 ** 52 - 1)),
    2.0 ** 50 + 0.25, 2.0 ** 50 + 0.75, 123456789012345.67, 1.5, 2.5, 1e22, 1e23, 5e-5,
})
RAW_DOUBLES = st.integers(0, 2 ** 64 - 1).map(_double).filter(math.isfinite)


def _c_repr(value: float) -> str | None:
    from collector.ingest import _cenvelope  # type: ignore[attr-defined]  # built: the autouse fixture skips otherwise

    return _cenvelope.float_repr(value)


def test_edge_doubles_are_written_as_repr():
    """Every power of two and its neighbours (the lopsided rounding intervals), subnormals, the
    extremes, the bounds of fixed notation, exact decimal midpoints (2**50 + 0.25: its two nearest
    17-digit forms are equally near; repr takes the even one): the compiled repr is Python's,
    positive and negative, on every double, where JSON texts reach only some of them."""
    for value in EDGE_DOUBLES:
        for signed in (value, -value):
            assert _c_repr(signed) == repr(signed)


@settings(max_examples=2000, deadline=None)
@given(st.one_of(FLOATS, RAW_DOUBLES))
def test_every_double_is_written_as_repr(value):
    assert _c_repr(value) == repr(value)


def _stored_dimensions(body: bytes, tmp_path, native: bool) -> list[str]:
    prepared = (prepare_body(body, None, ROUTING, tmp_path / "compiled") if native
                else prepare_items(split_items(body), ROUTING, tmp_path / "reference", fast=False))
    return prepared.tables["traces"].column("customDimensions").to_pylist()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.one_of(FLOATS, RAW_DOUBLES, st.sampled_from(EDGE_DOUBLES)))
def test_doubles_in_properties_are_stored_as_the_python_path_stores_them(tmp_path, value):
    """A trace whose property holds the double (stored as its repr) and a nested one (as orjson
    writes it): the compiled path takes the item (but for a nested 1e-05, which orjson writes its
    own way) and stores the Python path's customDimensions."""
    text = _short_text(value)
    assume(text is not None)
    body = orjson.dumps(_plain("MessageData", message="m", properties={"f": "__F__", "nested": {"v": ["__F__"]}}))
    body = body.replace(b'"__F__"', text.encode())
    assert taken(body) == (0 if "e-" in repr(value) else 1)
    stored = _stored_dimensions(body, tmp_path, native=True)
    assert stored == _stored_dimensions(body, tmp_path, native=False)
    assert orjson.loads(stored[0])["f"] == repr(value)


def _concurrent_bodies() -> list[bytes]:
    batches = [gzip.decompress(batch_body("key-a", f"op-{seed}", seed)) for seed in range(6)]
    floats = [_items(repr(v))[0] for v in _many_doubles(4)]
    return batches + floats


def test_bodies_prepared_at_once_in_threads_store_what_each_stores_alone(tmp_path):
    bodies_ = _concurrent_bodies() * 3
    alone = [outcome(prepare_body(body, None, ROUTING, tmp_path / "alone")) for body in bodies_]
    with ThreadPoolExecutor(6) as threads:
        prepared = list(threads.map(lambda body: prepare_body(body, None, ROUTING, tmp_path / "threads"), bodies_))
    assert [outcome(p) for p in prepared] == alone
    # Each body's C-made ids are its own head and the item's index: a head shared across
    # parses (it was a static of the module while the GIL serialized them) would repeat ids.
    every = [i for p in prepared for table in p.tables.values() for i in table.column("itemId").to_pylist()]
    assert len(set(every)) == len(every), "item ids are unique across bodies prepared at once"


def test_a_body_mostly_left_to_the_python_path_goes_to_the_pool(tmp_path):
    """threads.MOST_LEFT: past it the collector's threads hand the body to the pool (None);
    below it they prepare it, declined items included, as prepare_body does."""
    sampled = {**_plain("MessageData", message="sampled"), "sampleRate": 50}  # left to the Python path
    plain = _plain("MessageData", message="plain")
    mostly_left = orjson.dumps([sampled, sampled, plain])
    mostly_taken = orjson.dumps([sampled, plain, plain])
    assert prepare_compiled(mostly_left, None, ROUTING, tmp_path, MOST_LEFT) is None
    prepared = prepare_compiled(mostly_taken, None, ROUTING, tmp_path, MOST_LEFT)
    assert prepared is not None and prepared.accepted == 3
    assert outcome(prepared) == outcome(prepare_body(mostly_taken, None, ROUTING, tmp_path))


def _c_double(text: str) -> float:
    from collector.ingest import _cenvelope  # type: ignore[attr-defined]  # built: the autouse fixture skips otherwise

    return _cenvelope.to_double(text)


def _bits(value: float) -> bytes:
    return struct.pack("<d", value)


EDGE_NUMBER_TEXTS = [
    "0", "-0", "0.0", "-0.0", "0e5", "-0e-5", "0.000", "100", "100.0", "1e2", "1E2", "1e+2",
    "9007199254740992", "9007199254740993", "9007199254740994", "9007199254740995", "-9007199254740993.0",
    "1e22", "1e23", "1e-22", "1e-23", "1e27", "1e28", "1e-27", "1e-28", "123456789e22", "8.5e-23",
    "9999999999999999", "99999999999999999", "999999999999999999", "9999999999999999999", "18446744073709551615",
    "18446744073709551616", "18446744073709551615e5", "0.43276706790505337", "0.030589983033553536",
    "0.1", "0.2", "0.30000000000000004", "1.7976931348623157e308", "2.2250738585072014e-308", "5e-324",
    "123456789012345678e-27", "1125899906842624.25", "1125899906842624.75", "00000000000000000000.5",
    "1.00000000000000011102230246251565404236316680908203125", "9007199254740993e-5", "9007199254740993e5",
]


def test_edge_number_texts_are_read_as_float_reads_them():
    """The shortcuts of to_double (Clinger's exact multiply below 2**53 and 1e22, x87's 64-bit
    mantissa above, its midpoints to strtod_l): every edge reads as Python's float(), sign too."""
    for text in EDGE_NUMBER_TEXTS:
        assert _bits(_c_double(text)) == _bits(float(text)), text


def _fixed(w: int, d: int) -> str:
    """w / 10**d written in fixed notation, every digit kept (0.000123 from 123 and 6)."""
    digits = str(w).rjust(d + 1, "0")
    return f"{digits[:-d]}.{digits[-d:]}" if d else digits


def _near_midpoint(bits: int, digits: int) -> str:
    """The decimal midpoint between a double and the next, at `digits` significant digits: where
    one rounding to 64 bits could land on the midpoint itself."""
    low = abs(_double(bits))
    return f"{(Decimal(low) + Decimal(math.nextafter(low, math.inf))) / 2:.{digits - 1}e}"


NUMBER_TEXTS = st.one_of(
    st.builds(lambda w, q: f"{w}e{q}", st.integers(0, 10 ** 20), st.integers(-32, 32)),
    st.builds(_fixed, st.integers(0, 10 ** 20), st.integers(0, 30)),
    st.builds(_near_midpoint, st.integers(0x3800000000000000, 0x4600000000000000), st.integers(15, 19)),
    FLOATS.map(repr), RAW_DOUBLES.map(repr),
)


@settings(max_examples=3000, deadline=None)
@given(NUMBER_TEXTS)
def test_number_texts_are_read_as_float_reads_them(text):
    assert _bits(_c_double(text)) == _bits(float(text)), text
