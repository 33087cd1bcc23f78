"""The router's own telemetry: one `requests` item per request a client made (with the deployment
that served it, `Component` = router), and one `Mirror comparison` customEvent per mirrored
request saying whether the shadow deployment answered as the primary did (with the input and both
answers when they differ).

The hot path only appends a tuple; a thread builds envelopes and posts them to the collector once
a second, so routing never waits on telemetry.
"""

from __future__ import annotations

import logging
import threading
import time

import orjson

from scoring.envelopes import Identity, Operation, duration_text, request
from scoring.sender import TrackTransport

log = logging.getLogger("endpoints.telemetry")

EXAMPLE_CHARS = 2000
MAX_WAITING = 50_000
"""Items kept while the collector does not answer; older ones are dropped beyond it."""


class RouterTelemetry:
    def __init__(self, endpoint: str, instrumentation_key: str, ingestion_endpoint: str, interval: float = 1.0):
        self.identity = Identity(instrumentation_key, endpoint, "", "router")
        self.identity.base_properties["Component"] = "router"
        self.transport = TrackTransport(ingestion_endpoint, instrumentation_key)
        self.interval = interval
        self.waiting: list[tuple] = []
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="router-telemetry", daemon=True)
        self.template = request_template(self.identity)
        self.second: tuple[int, bytes] = (-1, b"")

    def start(self) -> RouterTelemetry:
        self.thread.start()
        return self

    def request(self, wall: float, duration: float, status: int, deployment: str, incoming) -> None:
        self.waiting.append(("request", wall, duration, status, deployment,
                             (incoming.trace, incoming.parent, incoming.span, incoming.url)))  # not its body

    def comparison(self, primary: str, shadow: str, body: bytes, primary_answer: tuple[int, bytes],
                   shadow_answer: tuple[int, bytes]) -> None:
        """Compared now, so that only the verdict and short examples wait, never whole bodies."""
        (primary_status, primary_raw), (shadow_status, shadow_raw) = primary_answer, shadow_answer
        primary_body, shadow_body = _body(primary_raw), _body(shadow_raw)
        same = primary_status == shadow_status and _normalized(primary_body) == _normalized(shadow_body)
        properties = {"Deployment": shadow, "Primary": primary, "Same": str(same).lower(),
                      "PrimaryStatus": str(primary_status), "MirrorStatus": str(shadow_status)}
        if not same:
            properties.update(Input=_text(body), PrimaryResponse=_text(primary_body), MirrorResponse=_text(shadow_body))
        self.waiting.append(("comparison", time.time(), properties))

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join(timeout=5)
        self.flush()
        self.transport.close()

    def _run(self) -> None:
        while not self.stopping.wait(self.interval):
            self.flush()

    def flush(self) -> None:
        taken, self.waiting = self.waiting, []
        if not taken:
            return
        lines = [self._envelope(item) for item in taken]
        outcome = self.transport.post(lines)
        if outcome.retry_all:  # the collector is away: keep what fits and try again
            log.warning("router telemetry not sent: %s", outcome.message)
            self.waiting[:0] = taken
            del self.waiting[:-MAX_WAITING]  # the oldest go first

    def _envelope(self, item: tuple) -> bytes:
        if item[0] == "request":
            return self._request(*item[1:])
        _, moment, extra = item
        base = {"ver": 2, "name": "Mirror comparison", "properties": self.identity.properties(None, extra)}
        return self.identity.envelope("Event", "EventData", base, moment, None)


    def _request(self, wall: float, duration: float, status: int, deployment: str, ids: tuple) -> bytes:
        """The item through the template: a few microseconds, where building and encoding the
        envelope as a dict costs several times that (this runs once per request routed)."""
        trace, parent, span, url = ids
        whole = int(wall)
        if self.second[0] != whole:
            self.second = (whole, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole)).encode())
        return self.template % {
            b"T": b"%s.%06dZ" % (self.second[1], min(999_999, round((wall - whole) * 1e6))), b"O": trace, b"P": parent or trace,
            b"S": span, b"D": _duration(duration), b"C": b"%d" % status, b"K": b"true" if status < 400 else b"false",
            b"U": orjson.dumps("http://router" + url.decode("latin-1")), b"E": orjson.dumps(deployment)}


def request_template(identity: Identity) -> bytes:
    """A router request item's envelope as bytes with %(X)s holes, built once through the same
    envelope code as every other item (so its fixed parts are encoded and escaped alike)."""
    operation = Operation("\x00O", "\x00P", "POST /score")
    properties = identity.properties(operation, {"Deployment": "\x00E"})
    text = request(identity, operation, span_id="\x00S", name="POST /score", url="\x00U", status=200, start_s=0,
                   duration_s=0, properties=properties)
    item = orjson.loads(text)
    item["time"] = "\x00T"
    base = item["data"]["baseData"]
    base.update(duration="\x00D", responseCode="\x00C", success="\x00K")
    encoded = orjson.dumps(item).replace(b"%", b"%%")
    for hole in b"TOPSDC":
        encoded = encoded.replace(b'\\u0000' + bytes([hole]), b"%(" + bytes([hole]) + b")s")
    for hole in b"KUE":  # inserted with their own quotes (true/false, JSON strings)
        encoded = encoded.replace(b'"\\u0000' + bytes([hole]) + b'"', b"%(" + bytes([hole]) + b")s")
    return encoded


def _duration(seconds: float) -> bytes:
    """'0.00:00:ss.ffffff' (RequestData's form) for what a routed request takes, under a minute."""
    if seconds >= 60:
        return duration_text(seconds).encode()
    micros = round(seconds * 1_000_000)
    return b"0.00:00:%02d.%06d" % divmod(micros, 1_000_000)


def _body(raw: bytes) -> bytes:
    return raw.partition(b"\r\n\r\n")[2]


def _normalized(body: bytes) -> object:
    """JSON answers compare by value (key order and spacing aside); anything else byte for byte."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return body


def _text(body: bytes) -> str:
    return body[:EXAMPLE_CHARS].decode("utf-8", "replace")

