"""The telemetry path's stages on their own: queue -> spool -> shipper, with test doubles."""

from scoring.sender import Outcome, Shipper, _partial
from scoring.spool import Spool
from scoring.telemetry_queue import MemorySink, TelemetryQueue


def test_queue_drops_and_counts_when_full():
    sink = MemorySink()
    queue = TelemetryQueue(sink, capacity=3)
    for index in range(5):
        queue.put(b"%d" % index)
    queue.flush()
    assert sink.lines == [b"0", b"1", b"2"]
    assert (queue.accepted, queue.dropped, queue.spooled) == (3, 2, 3)


def test_spool_bound_drops_the_oldest_and_counts_them(tmp_path):
    spool = Spool(tmp_path)
    for batch in range(4):
        spool.write([b"x" * 100] * (batch + 1))
    dropped = spool.enforce(max_bytes=800)
    assert dropped == 1 + 2
    assert [s.items for s in spool.segments()] == [3, 4]


class FlakyTransport:
    """Down for the first `failures` posts, then accepts everything."""

    def __init__(self, failures: int):
        self.failures = failures
        self.received: list[bytes] = []

    def post(self, lines):
        if self.failures:
            self.failures -= 1
            return Outcome(retry_all=True, message="down")
        self.received.extend(lines)
        return Outcome(sent=len(lines))

    def close(self):
        pass


def test_shipper_keeps_segments_until_acknowledged(tmp_path):
    spool = Spool(tmp_path)
    spool.write([b"a", b"b"])
    transport = FlakyTransport(failures=2)
    shipper = Shipper("test", spool, transport, max_bytes=2**20)
    assert shipper.ship_once() and spool.totals()[0] == 2
    shipper.ship_once()
    assert shipper.ship_once()
    assert transport.received == [b"a", b"b"]
    assert spool.totals() == (0, 0)
    assert shipper.counters["sent"] == 2 and shipper.counters["retries"] == 2


def test_partial_answer_retries_only_retryable_items():
    errors = [{"index": 0, "statusCode": 400, "message": "bad"}, {"index": 2, "statusCode": 503, "message": "busy"}]
    outcome = _partial(errors, [b"a", b"b", b"c"], 206)
    assert (outcome.sent, outcome.rejected, outcome.retry_lines) == (1, 1, [b"c"])
