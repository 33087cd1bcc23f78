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
from concurrent.futures import ThreadPoolExecutor

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from loader import batch_body
from test_columnar import _plain
from test_compiled_path import ROUTING, assert_same, bodies, built, outcome, taken  # noqa: F401 (built: autouse)

from collector.ingest.prepare import prepare_body, prepare_compiled
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
    """Every normal double that is no power of two, written with an exponent of at most two
    characters (e16, e-5: the C parse declines a body with a longer one whole), is taken there,
    its repr written there."""
    values = _many_doubles(300)
    texts = [repr(v).replace("e+", "e").replace("e-0", "e-") for v in values]
    short = [(v, t) for v, t in zip(values, texts) if "e" not in t or len(t.split("e")[1]) <= 2]
    for start in range(0, len(short), 100):
        chunk = short[start:start + 100]
        body = b"\n".join(_items(text)[1].split(b"\n")[0] for _, text in chunk)
        assert_same(body, tmp_path)
        assert taken(body) == sum(_compiled_repr(v) for v, _ in chunk)


def _compiled_repr(value: float) -> bool:
    """Whether the C repr writes this double rather than leaving its item: zero, or a normal double
    unless it is a power of two that 15 digits do not settle (its rounding interval is lopsided)."""
    if value == 0:
        return True
    if abs(value) < 2.2250738585072014e-308:
        return False
    return math.frexp(abs(value))[0] != 0.5 or float(f"{value:.15g}") == value


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
