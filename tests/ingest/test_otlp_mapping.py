"""OTLP -> App Insights envelopes, checked against azure-monitor-opentelemetry-exporter itself.

The differential tests make spans, log records and metric points with the real OpenTelemetry SDK and
convert the SAME objects twice: (a) with the Azure exporter's own conversion, serialised exactly as it
posts them, and (b) through the OTLP protobuf encoder, `decode_otlp` and `*_to_envelopes`. The two
must agree field by field, except for what `collector/ingest/otlp/` documents as different:
the sender-process facts (`ai.internal.sdkVersion`, `ai.device.id`, `ai.device.locale`) and the
duration's precision (microseconds instead of milliseconds).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import warnings
from importlib.metadata import version
from pathlib import Path

# The Azure SDK must not phone home from a test: set before it is imported.
os.environ.setdefault("APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL", "true")
os.environ.setdefault("APPLICATIONINSIGHTS_CONTROLPLANE_DISABLED", "true")
os.environ.setdefault("APPLICATIONINSIGHTS_SDKSTATS_DISABLED", "true")

import pytest
from azure.monitor.opentelemetry.exporter import (
    AzureMonitorLogExporter,
    AzureMonitorMetricExporter,
    AzureMonitorTraceExporter,
)
from azure.monitor.opentelemetry.exporter._generated.exporter._utils.model_base import SdkJSONEncoder
from azure.monitor.opentelemetry.exporter.export.metrics._exporter import APPLICATION_INSIGHTS_METRIC_TEMPORALITIES
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.metrics_encoder import encode_metrics
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanKind, Status, StatusCode

from collector.ingest.otlp import (
    OtlpContentTypeError,
    OtlpDecodeError,
    decode_otlp,
    logs_to_envelopes,
    metrics_to_envelopes,
    traces_to_envelopes,
)

IKEY = "00000000-0000-0000-0000-000000000001"
CONNECTION_STRING = f"InstrumentationKey={IKEY};IngestionEndpoint=http://127.0.0.1:9/"
FIXTURES = Path(__file__).parent.parent / "fixtures" / "otlp"
PROTOBUF = "application/x-protobuf"
RESOURCE = Resource.create({
    "service.name": "scoring-api",
    "service.namespace": "ml",
    "service.instance.id": "pod-7",
    "service.version": "2.1.0",
})
SENDER_TAGS = ("ai.internal.sdkVersion", "ai.device.id", "ai.device.locale")
"""Tags the Azure exporter fills from the process it runs in, which an OTLP body does not carry."""


# --------------------------------------------------------------------------------------------------
# Both sides of the comparison


def _wire(items: list) -> list[dict]:
    """The exporter's envelopes exactly as its client serialises them onto the wire."""
    return json.loads(json.dumps(items, cls=SdkJSONEncoder, exclude_readonly=True))


def _azure_exporter(cls):
    return cls(connection_string=CONNECTION_STRING, disable_offline_storage=True)


def _via_otlp(signal: str, request, convert) -> list[dict]:
    """Encode as the OTLP exporter does, send through protobuf AND OTLP JSON; both must agree."""
    from_protobuf = convert(decode_otlp(signal, request.SerializeToString(), PROTOBUF), IKEY)
    from_json = convert(decode_otlp(signal, _otlp_json(request), "application/json"), IKEY)
    assert from_json == from_protobuf
    return json.loads(json.dumps(from_protobuf))  # what the route would hand on: plain JSON


def _otlp_json(request) -> bytes:
    """OTLP JSON as the spec defines it: proto3 JSON mapping, ids in hex instead of base64."""
    document = json_format.MessageToDict(request)

    def hexify(node):
        if isinstance(node, list):
            for item in node:
                hexify(item)
        elif isinstance(node, dict):
            for key, value in node.items():
                if key in ("traceId", "spanId", "parentSpanId") and value:
                    node[key] = base64.b64decode(value).hex()
                else:
                    hexify(value)

    hexify(document)
    return json.dumps(document).encode()


_DURATION = re.compile(r"^(\d+)\.(\d\d):(\d\d):(\d\d)\.(\d+)$")


def _micros(duration: str) -> int:
    days, hours, minutes, seconds, fraction = _DURATION.match(duration).groups()
    whole = ((int(days) * 24 + int(hours)) * 60 + int(minutes)) * 60 + int(seconds)
    return whole * 1_000_000 + int(fraction.ljust(6, "0")[:6])


def assert_same_envelope(ours: dict, theirs: dict, duration_ns: int | None = None) -> None:
    """Field by field, allowing only the documented differences."""
    ours, theirs = json.loads(json.dumps(ours)), json.loads(json.dumps(theirs))
    assert ours["tags"]["ai.internal.sdkVersion"] == f"otlp:python:{version('opentelemetry-sdk')}"
    for tags in (ours["tags"], theirs["tags"]):
        for tag in SENDER_TAGS:
            tags.pop(tag, None)
    ours_base, theirs_base = ours["data"]["baseData"], theirs["data"]["baseData"]
    if "duration" in theirs_base and duration_ns is not None:
        ours_duration, theirs_duration = ours_base.pop("duration"), theirs_base.pop("duration")
        assert _micros(ours_duration) == (duration_ns + 500) // 1000
        assert abs(_micros(ours_duration) - _micros(theirs_duration)) <= 500
    assert ours == theirs


# --------------------------------------------------------------------------------------------------
# Traces


@pytest.fixture
def tracing():
    """A tracer provider whose finished spans are kept in memory, and the two conversions."""
    provider = TracerProvider(resource=RESOURCE)
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    azure = _azure_exporter(AzureMonitorTraceExporter)

    def compare(scope: str = "demo.tracer") -> list[dict]:
        spans = memory.get_finished_spans()
        assert spans, "no span was recorded"
        ours_all = []
        for span in spans:
            theirs = _wire([azure._span_to_envelope(span), *azure._span_events_to_envelopes(span)])
            ours = _via_otlp("traces", encode_spans([span]), traces_to_envelopes)
            assert len(ours) == len(theirs)
            duration = span.end_time - span.start_time
            assert_same_envelope(ours[0], theirs[0], duration)
            for our_event, their_event in zip(ours[1:], theirs[1:]):
                assert_same_envelope(our_event, their_event)
            ours_all.extend(ours)
        memory.clear()
        return ours_all

    compare.tracer = lambda scope="demo.tracer": provider.get_tracer(scope)
    yield compare
    provider.shutdown()


def _base(envelope: dict) -> dict:
    return envelope["data"]["baseData"]


def test_server_span_new_http_semconv(tracing):
    with tracing.tracer().start_as_current_span("POST", kind=SpanKind.SERVER, attributes={
        "http.request.method": "POST", "http.route": "/score", "url.full": "http://127.0.0.1:8000/score?x=1",
        "http.response.status_code": 200, "user_agent.original": "curl/8", "client.address": "10.0.0.9",
        "server.address": "127.0.0.1", "server.port": 8000, "url.scheme": "http",
        "model.name": "resnet", "batch": 4, "ratio": 1.5, "warm": True, "labels": ["a", "b"],
    }):
        pass
    (request,) = tracing()
    assert request["name"] == "Microsoft.ApplicationInsights.Request"
    assert request["tags"]["ai.operation.name"] == "POST /score"
    assert request["tags"]["ai.cloud.role"] == "ml.scoring-api"
    assert request["tags"]["ai.cloud.roleInstance"] == "pod-7"
    assert request["tags"]["ai.location.ip"] == "10.0.0.9"
    assert "ai.operation.parentId" not in request["tags"]
    assert _base(request)["responseCode"] == "200" and _base(request)["success"] is True
    assert _base(request)["properties"] == {
        "model.name": "resnet", "batch": "4", "ratio": "1.5", "warm": "True", "labels": "('a', 'b')"}


def test_server_span_old_http_semconv(tracing):
    tracer = tracing.tracer()
    with tracer.start_as_current_span("GET", kind=SpanKind.SERVER, attributes={
        "http.method": "GET", "http.url": "http://api:5001/health", "http.status_code": 200,
        "http.user_agent": "kube-probe/1.29", "http.client_ip": "10.1.1.1", "http.flavor": "1.1",
    }):
        pass
    with tracer.start_as_current_span("GET", kind=SpanKind.SERVER, attributes={
        "http.method": "GET", "http.scheme": "https", "http.host": "api.example", "http.target": "/v1/items?id=3",
        "http.status_code": "201", "http.route": "/v1/items",
    }):
        pass
    with tracer.start_as_current_span("PUT", kind=SpanKind.SERVER, attributes={
        "http.request.method": "PUT", "url.scheme": "http", "url.path": "/m", "url.query": "v=2",
        "http.server_name": "srv", "net.host.port": 81, "http.response.status_code": 204,
        "user_agent.original": "AlwaysOn probe",
    }):
        pass
    health, items, put = tracing()
    assert health["tags"]["ai.operation.name"] == "GET /health"
    assert _base(items)["url"] == "https://api.example/v1/items?id=3"
    assert _base(items)["name"] == "GET /v1/items" and _base(items)["responseCode"] == "201"
    assert _base(put)["url"] == "http://srv:81/m?v=2"
    assert put["tags"]["ai.operation.syntheticSource"] == "True"


def test_failed_requests(tracing):
    tracer = tracing.tracer()
    with tracer.start_as_current_span("POST /score", kind=SpanKind.SERVER, attributes={
        "http.request.method": "POST", "http.route": "/score", "http.response.status_code": 500,
    }) as span:
        span.set_status(Status(StatusCode.ERROR, "boom"))
    with tracer.start_as_current_span("GET /x", kind=SpanKind.SERVER, attributes={
        "http.request.method": "GET", "http.route": "/x", "http.response.status_code": 404,
    }):
        pass
    with tracer.start_as_current_span("GET /y", kind=SpanKind.SERVER, attributes={"http.request.method": "GET"}):
        pass
    with tracer.start_as_current_span("job", kind=SpanKind.SERVER) as span:
        span.set_status(Status(StatusCode.ERROR))
    error, not_found, no_code, job = tracing()
    assert (_base(error)["success"], _base(error)["responseCode"]) == (False, "500")
    assert (_base(not_found)["success"], _base(not_found)["responseCode"]) == (False, "404")
    assert (_base(no_code)["success"], _base(no_code)["responseCode"]) == (False, "0")
    assert (_base(job)["success"], _base(job)["responseCode"]) == (False, "0")


def test_consumer_spans_are_requests(tracing):
    with tracing.tracer().start_as_current_span("receive", kind=SpanKind.CONSUMER, attributes={
        "messaging.system": "kafka", "messaging.destination": "scores", "net.peer.name": "broker",
    }):
        pass
    (request,) = tracing()
    assert request["data"]["baseType"] == "RequestData"
    assert _base(request)["source"] == "broker/scores"


def test_client_http_spans(tracing):
    tracer = tracing.tracer()
    with tracer.start_as_current_span("parent", kind=SpanKind.SERVER):
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
            "http.request.method": "GET", "url.full": "http://feature-store:8080/features?id=1",
            "server.address": "feature-store", "server.port": 8080, "http.response.status_code": 404,
        }):
            pass
        with tracer.start_as_current_span("POST", kind=SpanKind.CLIENT, attributes={
            "http.method": "POST", "http.url": "https://blob.example:443/c/b", "http.status_code": 201,
            "http.scheme": "https",
        }):
            pass
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
            "http.method": "GET", "http.scheme": "http", "http.host": "svc:80", "http.target": "/p",
            "peer.service": "pricing",
        }):
            pass
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
            "http.request.method": "GET", "url.full": "http://fs/f", "server.address": "fs"}):
            pass
    features, blob, pricing, no_port, parent = tracing()
    assert _base(no_port)["target"] == "fs"  # no server.port: the bare host (the exporter said "fs:None" before 1.0.0b59)
    assert _base(features) | {"duration": None} == _base(features) | {
        "type": "HTTP", "name": "GET /features", "data": "http://feature-store:8080/features?id=1",
        "target": "feature-store:8080", "resultCode": "404", "success": True, "duration": None}
    assert features["tags"]["ai.operation.parentId"] == _base(parent)["id"]
    assert features["tags"]["ai.operation.id"] == parent["tags"]["ai.operation.id"]
    assert _base(blob)["target"] == "blob.example"
    assert _base(pricing)["target"] == "pricing" and _base(pricing)["data"] == "http://svc:80/p"


def test_database_spans(tracing):
    tracer = tracing.tracer()
    for attributes in (
        {"db.system": "postgresql", "db.statement": "SELECT 1", "net.peer.name": "pg", "net.peer.port": 5432,
         "db.name": "feat"},
        {"db.system.name": "mysql", "db.query.text": "SELECT 2", "server.address": "my", "server.port": 3307,
         "db.namespace": "shop"},
        {"db.system": "sqlite", "db.operation": "INSERT"},
        {"db.system": "mssql", "db.operation.name": "EXEC", "net.peer.ip": "10.0.0.5", "net.peer.port": 1500},
        {"db.system": "cosmosdb"},
        {"db.system": "redis", "peer.service": "cache"},
    ):
        with tracer.start_as_current_span("query", kind=SpanKind.CLIENT, attributes=attributes):
            pass
    pg, mysql, sqlite, mssql, cosmos, redis = (_base(e) for e in tracing())
    assert (pg["type"], pg["data"], pg["target"]) == ("postgresql", "SELECT 1", "pg|feat")
    assert (mysql["type"], mysql["target"]) == ("mysql", "my:3307|shop")
    assert (sqlite["type"], sqlite["data"], sqlite["target"]) == ("SQL", "INSERT", "sqlite")
    assert (mssql["type"], mssql["target"]) == ("SQL", "10.0.0.5:1500")
    assert (cosmos["type"], cosmos["target"]) == ("cosmosdb", "cosmosdb")
    assert redis["target"] == "cache"


def test_internal_and_other_dependency_spans(tracing):
    tracer = tracing.tracer()
    with tracer.start_as_current_span("preprocess", attributes={"rows": 12}):
        pass
    with tracer.start_as_current_span("call", kind=SpanKind.CLIENT):
        pass
    with tracer.start_as_current_span("publish", kind=SpanKind.PRODUCER, attributes={
        "messaging.system": "rabbitmq", "messaging.destination": "q1"}):
        pass
    with tracer.start_as_current_span("send", kind=SpanKind.CLIENT, attributes={
        "messaging.system": "kafka", "net.peer.name": "broker", "net.peer.port": 9092}):
        pass
    with tracer.start_as_current_span("rpc", kind=SpanKind.CLIENT, attributes={"rpc.system": "grpc"}):
        pass
    with tracer.start_as_current_span("chat", kind=SpanKind.CLIENT, attributes={
        "gen_ai.system": "openai", "http.request.method": "POST", "url.full": "https://api.openai.com/v1/chat"}):
        pass
    with tracer.start_as_current_span("eh", kind=SpanKind.CLIENT, attributes={
        "az.namespace": "Microsoft.EventHub", "server.address": "ns.servicebus",
        "messaging.destination.name": "h"}):
        pass
    inproc, plain, producer, kafka, rpc, chat, eventhub = (_base(e) for e in tracing())
    assert inproc["type"] == "InProc" and inproc["properties"] == {"rows": "12"}
    assert plain["type"] == "N/A"
    assert (producer["type"], producer["target"]) == ("Queue Message | rabbitmq", "q1")
    assert (kafka["type"], kafka["target"]) == ("kafka", "broker:9092")
    assert rpc["type"] == "rpc.system"
    assert chat["type"] == "GenAI | openai"
    assert (eventhub["type"], eventhub["target"]) == ("Microsoft.EventHub", "ns.servicebus/h")


def test_exception_and_plain_span_events(tracing):
    tracer = tracing.tracer()
    with tracer.start_as_current_span("GET /boom", kind=SpanKind.SERVER, attributes={
        "http.request.method": "GET", "http.route": "/boom", "http.response.status_code": 500,
        "session.id": "s-1"}) as span:
        span.add_event("cache miss", {"key": "k1", "size": 3, "code.lineno": 7})
        try:
            raise ValueError("bad input")
        except ValueError as exc:
            span.record_exception(exc, {"request_id": "r-1"})
        span.add_event("exception")  # an exception event without attributes
        span.set_status(Status(StatusCode.ERROR))
    request, message, exception, bare = tracing()
    span_id = _base(request)["id"]
    assert message["data"]["baseType"] == "MessageData"
    assert _base(message)["message"] == "cache miss"
    assert _base(message)["properties"] == {"key": "k1", "size": "3"}
    assert "severityLevel" not in _base(message)
    assert exception["data"]["baseType"] == "ExceptionData"
    (details,) = _base(exception)["exceptions"]
    assert (details["typeName"], details["message"], details["hasFullStack"]) == ("ValueError", "bad input", True)
    assert details["stack"].startswith("Traceback (most recent call last):")
    assert "parsedStack" not in details and "severityLevel" not in _base(exception)
    assert _base(exception)["properties"] == {"request_id": "r-1"}
    assert _base(bare)["exceptions"][0] | {"stack": None} == {
        "typeName": "Exception", "message": "Exception", "hasFullStack": False, "stack": None}
    for event in (message, exception, bare):
        assert event["tags"]["ai.operation.parentId"] == span_id
        assert event["tags"]["ai.session.id"] == "s-1"


def test_links_sampling_measurements_users_and_instrumentation_scope(tracing):
    other = trace.SpanContext(0x5913E44DFE49084898796 << 8, 0xE17C3A4BCBEC3175, is_remote=True)
    tracer = tracing.tracer("opentelemetry.instrumentation.flask")
    with tracer.start_as_current_span("GET /m", kind=SpanKind.SERVER, links=[Link(other)], attributes={
        "http.request.method": "GET", "http.route": "/m", "http.response.status_code": 200,
        "_MS.sampleRate": 50.0, "microsoft.custom_measurements": json.dumps({"latency": 3, "bad": "x"}),
        "enduser.id": "alice", "enduser.pseudo.id": "anon-1", "user_agent.synthetic.type": "bot",
    }):
        pass
    (request,) = tracing()
    assert request["sampleRate"] == 50.0
    assert _base(request)["measurements"] == {"latency": 3.0}
    assert _base(request)["properties"]["_MS.ProcessedByMetricExtractors"] == "True"
    assert json.loads(_base(request)["properties"]["_MS.links"]) == [
        {"operation_Id": format(other.trace_id, "032x"), "id": format(other.span_id, "016x")}]
    assert (request["tags"]["ai.user.authUserId"], request["tags"]["ai.user.id"]) == ("alice", "anon-1")


def test_remote_parent_and_long_duration(tracing):
    parent = trace.SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=trace.TraceFlags(1))
    start = 1_795_452_941_217_580_930
    span = tracing.tracer().start_span("slow", kind=SpanKind.SERVER, start_time=start,
                                       context=trace.set_span_in_context(trace.NonRecordingSpan(parent)))
    span.end(end_time=start + ((26 * 60 + 3) * 60 + 4) * 10**9 + 123_456_789)
    (request,) = tracing()
    assert request["tags"]["ai.operation.parentId"] == "0000000000000def"
    assert _base(request)["duration"] == "1.02:03:04.123457"
    assert request["time"] == "2026-11-23T16:55:41.217581Z"


# --------------------------------------------------------------------------------------------------
# Logs


@pytest.fixture
def logging_otel():
    """A stdlib logger wired to an OTel logger provider, and the two conversions of what it emits."""
    provider = LoggerProvider(resource=RESOURCE)
    memory = InMemoryLogRecordExporter()
    provider.add_log_record_processor(SimpleLogRecordProcessor(memory))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        handler = LoggingHandler(level=logging.NOTSET, logger_provider=provider)
    logger = logging.getLogger("otlp_mapping_test")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(handler)
    azure = _azure_exporter(AzureMonitorLogExporter)

    def compare() -> list[dict]:
        records = memory.get_finished_logs()
        assert records, "no log record was emitted"
        theirs = _wire([azure._log_to_envelope(record) for record in records])
        ours = _via_otlp("logs", encode_logs(records), logs_to_envelopes)
        assert len(ours) == len(theirs)
        for our_envelope, their_envelope in zip(ours, theirs):
            assert_same_envelope(our_envelope, their_envelope)
        memory.clear()
        return ours

    compare.logger = logger
    compare.provider = provider
    yield compare
    logger.removeHandler(handler)
    provider.shutdown()


def test_log_records_at_each_severity(logging_otel):
    logger = logging_otel.logger
    logger.debug("debugging %s", "x")
    logger.info("scored", extra={"model": "resnet", "batch": 4})
    logger.warning("slow")
    logger.error("failed")
    logger.critical("down")
    levels = [(_base(e)["message"], _base(e)["severityLevel"]) for e in logging_otel()]
    assert levels == [("debugging x", 0), ("scored", 1), ("slow", 2), ("failed", 3), ("down", 4)]


def test_every_severity_number(logging_otel):
    otel_logger = logging_otel.provider.get_logger("raw")
    for number in SeverityNumber:
        otel_logger.emit(body=f"n{number.value}", severity_number=number)
    otel_logger.emit(body="no severity")
    envelopes = logging_otel()
    assert [_base(e)["severityLevel"] for e in envelopes] == [
        0 if n.value < 9 else int((n.value - 1) / 4 - 1) for n in SeverityNumber] + [0]
    assert _base(envelopes[-1])["properties"] == {"logger_name": "raw"}


def test_log_inside_span_and_outside(logging_otel, tracing):
    with tracing.tracer().start_as_current_span("POST /score", kind=SpanKind.SERVER) as span:
        logging_otel.logger.info("inside span", extra={"stage": "pre"})
    logging_otel.logger.info("outside")
    inside, outside = logging_otel()
    context = span.get_span_context()
    assert inside["tags"]["ai.operation.id"] == format(context.trace_id, "032x")
    assert inside["tags"]["ai.operation.parentId"] == format(context.span_id, "016x")
    assert outside["tags"]["ai.operation.id"] == "0" * 32
    assert outside["tags"]["ai.operation.parentId"] == "0" * 16
    assert _base(inside)["properties"]["stage"] == "pre"
    assert _base(inside)["properties"]["logger_name"] == "otlp_mapping_test"
    assert _base(inside)["properties"]["code.function.name"] == "test_log_inside_span_and_outside"


def test_log_with_exception(logging_otel):
    try:
        1 / 0  # noqa: B018 (the exception is the point)
    except ZeroDivisionError:
        logging_otel.logger.exception("scoring failed", extra={"request_id": "r-1"})
    otel_logger = logging_otel.provider.get_logger("raw")
    otel_logger.emit(severity_number=SeverityNumber.ERROR, attributes={"exception.message": "only a message"})
    logged, raw = logging_otel()
    assert logged["data"]["baseType"] == "ExceptionData"
    assert _base(logged)["severityLevel"] == 3
    (details,) = _base(logged)["exceptions"]
    assert (details["typeName"], details["message"]) == ("ZeroDivisionError", "scoring failed")
    assert details["stack"].endswith("ZeroDivisionError: division by zero\n")
    assert _base(logged)["properties"]["request_id"] == "r-1"
    assert not any(key.startswith("exception.") for key in _base(logged)["properties"])
    assert _base(raw)["exceptions"][0]["typeName"] == "Exception"
    assert _base(raw)["exceptions"][0]["message"] == "only a message"
    assert _base(raw)["exceptions"][0]["hasFullStack"] is False


def test_log_events_availability_and_odd_bodies(logging_otel):
    logger = logging_otel.logger
    logger.info("ignored body", extra={"microsoft.custom_event.name": "model_loaded", "version": 3})
    logger.info("event from body", extra={"APPLICATION_INSIGHTS_EVENT_MARKER_ATTRIBUTE": True})
    logger.info({"input": [1, 2], "nested": {"k": "v"}})
    logger.info("   ")
    logger.info("probe", extra={
        "microsoft.availability.id": "a1", "microsoft.availability.name": "ping",
        "microsoft.availability.duration": "0.00:00:01.000", "microsoft.availability.success": "True",
        "microsoft.availability.runLocation": "local"})
    logger.info("measured", extra={"microsoft.custom_measurements": {"score": 0.9}, "session.id": "s-9",
                                   "enduser.id": "bob", "ai.operation.name": "POST /score"})
    event, marker, structured, blank, availability, measured = logging_otel()
    assert (event["data"]["baseType"], _base(event)["name"]) == ("EventData", "model_loaded")
    assert _base(event)["properties"]["version"] == "3"
    assert (marker["data"]["baseType"], _base(marker)["name"]) == ("EventData", "event from body")
    assert json.loads(_base(structured)["message"]) == {"input": [1, 2], "nested": {"k": "v"}}
    assert _base(blank)["message"] == "n/a"
    assert availability["data"]["baseType"] == "AvailabilityData"
    assert (_base(availability)["name"], _base(availability)["success"]) == ("ping", True)
    assert _base(measured)["measurements"] == {"score": 0.9}
    assert measured["tags"]["ai.operation.name"] == "POST /score"
    assert (measured["tags"]["ai.session.id"], measured["tags"]["ai.user.authUserId"]) == ("s-9", "bob")


# --------------------------------------------------------------------------------------------------
# Metrics


@pytest.fixture
def metering():
    """A meter provider read with the Azure exporter's temporalities, and the two conversions."""
    reader = InMemoryMetricReader(preferred_temporality=APPLICATION_INSIGHTS_METRIC_TEMPORALITIES)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    azure = _azure_exporter(AzureMonitorMetricExporter)

    def compare() -> list[dict]:
        data = reader.get_metrics_data()
        theirs = []
        for resource_metrics in data.resource_metrics:
            for scope_metrics in resource_metrics.scope_metrics:
                for metric in scope_metrics.metrics:
                    for point in metric.data.data_points:
                        envelope = azure._point_to_envelope(
                            point, metric.name, resource_metrics.resource, scope_metrics.scope)
                        if envelope is not None:
                            theirs.append(envelope)
        theirs = _wire(theirs)
        ours = _via_otlp("metrics", encode_metrics(data), metrics_to_envelopes)
        assert len(ours) == len(theirs)
        for our_envelope, their_envelope in zip(ours, theirs):
            assert_same_envelope(our_envelope, their_envelope)
        return ours

    compare.meter = provider.get_meter("demo.meter")
    yield compare
    provider.shutdown()


def _metric(envelope: dict) -> dict:
    (metric,) = _base(envelope)["metrics"]
    return metric


def test_counter_histogram_gauge(metering):
    meter = metering.meter
    predictions = meter.create_counter("predictions")
    predictions.add(3, {"model": "resnet"})
    predictions.add(2, {"model": "resnet"})
    predictions.add(1, {"model": "bert", "synthetic": True})
    meter.create_counter("seconds").add(0.25)
    latency = meter.create_histogram("inference_ms")
    for value in (10, 20, 60):
        latency.record(value, {"model": "resnet"})
    meter.create_observable_gauge("queue_depth", callbacks=[lambda options: [
        __import__("opentelemetry.metrics", fromlist=["Observation"]).Observation(7, {"queue": "a"})]])
    meter.create_up_down_counter("in_flight").add(-2)
    by_name = {}
    for envelope in metering():
        by_name.setdefault(_metric(envelope)["name"], []).append(envelope)
    resnet, bert = by_name["predictions"]
    assert (_metric(resnet) | {}, _base(resnet)["properties"]) == (
        {"name": "predictions", "value": 5, "count": 1}, {"model": "resnet"})
    assert _base(bert)["properties"] == {"model": "bert", "synthetic": "True"}
    assert _metric(by_name["seconds"][0])["value"] == 0.25
    assert _metric(by_name["inference_ms"][0]) == {
        "name": "inference_ms", "value": 90.0, "count": 3, "min": 10.0, "max": 60.0}
    assert _metric(by_name["queue_depth"][0])["value"] == 7
    assert _metric(by_name["in_flight"][0])["value"] == -2
    assert "ai.operation.id" not in resnet["tags"]
    assert resnet["tags"]["ai.cloud.role"] == "ml.scoring-api"


def test_standard_http_metrics_and_performance_counters(metering):
    meter = metering.meter
    meter.create_histogram("http.server.request.duration").record(
        0.2, {"http.response.status_code": 200, "http.request.method": "GET"})
    meter.create_histogram("http.client.duration").record(
        15, {"http.status_code": 503, "server.address": "feature-store", "server.port": 8080})
    meter.create_histogram("http.server.request.size").record(100)  # dropped by the exporter, and by us
    meter.create_observable_gauge("azuremonitor.performancecounter.processtime", callbacks=[lambda options: [
        __import__("opentelemetry.metrics", fromlist=["Observation"]).Observation(12.5)]])
    server, client, counter = metering()
    assert _base(server)["properties"] == {
        "_MS.MetricId": "requests/duration", "_MS.IsAutocollected": "True", "request/resultCode": "200",
        "cloud/roleInstance": "pod-7", "cloud/roleName": "ml.scoring-api", "Request.Success": "True"}
    assert _base(client)["properties"]["dependency/target"] == "feature-store:8080"
    assert _base(client)["properties"]["Dependency.Success"] == "False"
    assert _metric(counter)["name"] == "\\Process(??APP_WIN32_PROC??)\\% Processor Time"


def test_otlp_delta_preference_is_the_azure_exporters_temporality(monkeypatch):
    """OTLP exporters default to cumulative (running totals per point, see fixtures/otlp/metrics.bin);
    the documented `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE=delta` gives exactly the Azure
    exporter's per-instrument temporalities, hence the same customMetrics rows."""
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE", "delta")
    exporter = OTLPMetricExporter(endpoint="http://127.0.0.1:9/v1/metrics")
    assert exporter._preferred_temporality == APPLICATION_INSIGHTS_METRIC_TEMPORALITIES


def test_exponential_histogram_and_summary_keep_their_values():
    """The Azure exporter sends 0 for these point types; we keep sum, count, min and max."""
    document = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "exp", "exponentialHistogram": {"dataPoints": [
            {"timeUnixNano": "1795452942219046290", "count": "4", "sum": 10.5, "min": 1.0, "max": 5.0}]}},
        {"name": "summary", "summary": {"dataPoints": [
            {"timeUnixNano": "1795452942219046290", "count": "2", "sum": 3.0,
             "quantileValues": [{"quantile": 0.0, "value": 1.0}, {"quantile": 1.0, "value": 2.0}]}]}},
    ]}]}]}
    request = decode_otlp("metrics", json.dumps(document).encode(), "application/json")
    exp, summary = metrics_to_envelopes(request, IKEY)
    assert _metric(exp) == {"name": "exp", "value": 10.5, "count": 4, "min": 1.0, "max": 5.0}
    assert _metric(summary) == {"name": "summary", "value": 3.0, "count": 2, "min": 1.0, "max": 2.0}
    assert exp["tags"] == {"ai.device.type": "Other", "ai.internal.sdkVersion": "otlp:unknown:unknown"}


# --------------------------------------------------------------------------------------------------
# Resource tags


def test_resource_tags_fallbacks():
    def tags(attributes: dict) -> dict:
        request = ExportTraceServiceRequest()
        resource_spans = request.resource_spans.add()
        for key, value in attributes.items():
            resource_spans.resource.attributes.add(key=key).value.string_value = value
        span = resource_spans.scope_spans.add().spans.add(trace_id=b"\x01" * 16, span_id=b"\x02" * 8, name="s")
        span.kind = span.SPAN_KIND_INTERNAL
        return traces_to_envelopes(request, IKEY)[0]["tags"]

    assert tags({"service.name": "api"})["ai.cloud.role"] == "api"
    assert "ai.cloud.roleInstance" not in tags({"service.name": "api"})
    host = tags({"service.name": "api", "host.name": "vm-3"})
    assert (host["ai.cloud.roleInstance"], host["ai.internal.nodeName"], host["ai.device.id"]) == ("vm-3",) * 3
    k8s = tags({"service.name": "unknown_service:python", "k8s.deployment.name": "scorer", "k8s.pod.name": "p-1"})
    assert (k8s["ai.cloud.role"], k8s["ai.cloud.roleInstance"]) == ("scorer", "p-1")
    assert tags({"service.name": "unknown_service:python"})["ai.cloud.role"] == "unknown_service:python"
    assert tags({"telemetry.sdk.language": "java", "telemetry.sdk.version": "1.40.0"})[
        "ai.internal.sdkVersion"] == "otlp:java:1.40.0"


# --------------------------------------------------------------------------------------------------
# The captured bodies of opentelemetry-exporter-otlp-proto-http 1.45.2


def _fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def test_fixture_traces_bin():
    request = decode_otlp("traces", _fixture("traces.bin"), PROTOBUF)
    envelopes = traces_to_envelopes(request, IKEY)
    kinds = [(e["data"]["baseType"], _base(e).get("name") or _base(e).get("message")) for e in envelopes]
    assert ("RemoteDependencyData", "GET /f") in kinds and ("RequestData", "POST /score") in kinds
    assert any(base_type == "ExceptionData" for base_type, _ in kinds)
    trace_id = base64.b64decode("WRPkTf5JCEiYeWDVKMz5jw==").hex()
    client = envelopes[0]
    assert client["tags"]["ai.operation.id"] == trace_id
    assert client["tags"]["ai.operation.parentId"] == base64.b64decode("bGZAIuX3jI0=").hex()
    assert (client["tags"]["ai.cloud.role"], client["tags"]["ai.cloud.roleInstance"]) == ("scoring-api", "pod-7")
    assert _base(client)["target"] == "feature-store" and _base(client)["type"] == "HTTP"
    assert all(e["iKey"] == IKEY for e in envelopes)


@pytest.mark.parametrize("signal", ["traces", "logs", "metrics"])
def test_fixture_bodies_match_their_json(signal):
    """The .bin body, its MessageToDict dump (base64 ids) and the spec's OTLP JSON (hex ids) agree."""
    from_protobuf = decode_otlp(signal, _fixture(f"{signal}.bin"), PROTOBUF)
    from_base64_json = decode_otlp(signal, _fixture(f"{signal}.decoded.json"), "application/json; charset=utf-8")
    from_hex_json = decode_otlp(signal, _otlp_json(from_protobuf), "application/json")
    assert from_protobuf == from_base64_json == from_hex_json
    assert from_protobuf.ByteSize() > 0


def test_fixture_logs_and_metrics():
    logs = logs_to_envelopes(decode_otlp("logs", _fixture("logs.bin"), PROTOBUF), IKEY)
    assert [(e["data"]["baseType"], _base(e)["severityLevel"]) for e in logs] == [
        ("MessageData", 1), ("ExceptionData", 3)]
    assert _base(logs[0])["properties"] == {
        "model": "resnet", "code.file.path": "/srv/app-demo/drive_otlp.py", "code.function.name": "<module>",
        "code.line.number": "44", "logger_name": "otlp_demo"}
    metrics = metrics_to_envelopes(decode_otlp("metrics", _fixture("metrics.bin"), PROTOBUF), IKEY)
    assert [_metric(e) for e in metrics] == [
        {"name": "predictions", "value": 3, "count": 1},
        {"name": "inference_ms", "value": 12.0, "count": 1, "min": 12.0, "max": 12.0}]


def test_hand_written_otlp_json():
    """OTLP JSON as other SDKs write it: hex ids (any case), integer enums, numbers for int64."""
    body = json.dumps({"resourceSpans": [{
        "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node-api"}}]},
        "scopeSpans": [{"scope": {"name": "x", "futureField": 1}, "spans": [{
            "traceId": "5B8EFFF798038103D269B633813FC60C", "spanId": "eee19b7ec3c1b174",
            "parentSpanId": "eee19b7ec3c1b173", "name": "GET /a", "kind": 2,
            "startTimeUnixNano": 1544712660000000000, "endTimeUnixNano": "1544712661000000000",
            "attributes": [{"key": "http.request.method", "value": {"stringValue": "GET"}},
                           {"key": "http.response.status_code", "value": {"intValue": 200}}],
            "status": {"code": 1}}]}]}]}).encode()
    (request,) = traces_to_envelopes(decode_otlp("traces", body, "application/json"), IKEY)
    assert request["tags"]["ai.operation.id"] == "5b8efff798038103d269b633813fc60c"
    assert request["tags"]["ai.operation.parentId"] == "eee19b7ec3c1b173"
    assert _base(request)["id"] == "eee19b7ec3c1b174"
    assert (_base(request)["duration"], _base(request)["responseCode"]) == ("0.00:00:01.000000", "200")
    assert request["tags"]["ai.cloud.role"] == "node-api"


# --------------------------------------------------------------------------------------------------
# Bad bodies


@pytest.mark.parametrize(("signal", "body", "content_type", "says"), [
    ("traces", b"\xff\xff\xff\xff\xff", PROTOBUF, "not a protobuf ExportTraceServiceRequest"),
    ("traces", b'{"resourceSpans": []}', PROTOBUF, "not a protobuf"),
    ("logs", b'{"resourceLogs": [', "application/json", "not valid JSON"),
    ("logs", b"[1, 2]", "application/json", "must be an object"),
    ("logs", b"\xff\xfe{}", "application/json", "not UTF-8"),
    ("traces", b'{"resourceSpans": 5}', "application/json", "resourceSpans"),
    ("traces", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz!"}]}]}]}',
     "application/json", "traceId"),
    ("traces", b'{"resourceSpans": [{"scopeSpans": [{"spans": '
               b'[{"traceId": "abcd", "spanId": "0102030405060708"}]}]}]}',
     "application/json", "resourceSpans[0].scopeSpans[0].spans[0].traceId: expected 16 bytes"),
    ("logs", b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"spanId": "01"}]}]}]}',
     "application/json", "logRecords[0].spanId"),
    ("metrics", b"", PROTOBUF, "empty body"),
    ("profiles", b"\x0a\x00", PROTOBUF, "unknown OTLP signal"),
])
def test_bad_bodies(signal, body, content_type, says):
    with pytest.raises(OtlpDecodeError, match=re.escape(says)) as caught:
        decode_otlp(signal, body, content_type)
    assert caught.value.status_code == 400


def test_wrong_content_type():
    with pytest.raises(OtlpContentTypeError, match="unsupported content type 'text/plain'") as caught:
        decode_otlp("traces", b"{}", "text/plain")
    assert caught.value.status_code == 415 and isinstance(caught.value, OtlpDecodeError)


def test_deeply_nested_json_is_a_decode_error():
    body = b'{"resourceLogs": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(OtlpDecodeError):
        decode_otlp("logs", body, "application/json")


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(signal=st.sampled_from(["traces", "logs", "metrics"]), body=st.binary(max_size=300))
def test_arbitrary_protobuf_bodies_decode_or_fail_cleanly(signal, body):
    convert = {"traces": traces_to_envelopes, "logs": logs_to_envelopes, "metrics": metrics_to_envelopes}[signal]
    try:
        request = decode_otlp(signal, body, PROTOBUF)
    except OtlpDecodeError:
        return
    json.dumps(convert(request, IKEY))


_ANY_VALUE = st.recursive(
    st.one_of(st.builds(lambda v: {"stringValue": v}, st.text(max_size=20)),
              st.builds(lambda v: {"intValue": v}, st.integers(-2**63, 2**63 - 1)),
              st.builds(lambda v: {"doubleValue": v}, st.floats(allow_nan=False, allow_infinity=False)),
              st.builds(lambda v: {"boolValue": v}, st.booleans()), st.just({})),
    lambda inner: st.one_of(
        st.builds(lambda vs: {"arrayValue": {"values": vs}}, st.lists(inner, max_size=3)),
        st.builds(lambda kvs: {"kvlistValue": {"values": [{"key": k, "value": v} for k, v in kvs]}},
                  st.lists(st.tuples(st.text(max_size=5), inner), max_size=3))),
    max_leaves=8)
_SEMANTIC_KEYS = [
    "APPLICATION_INSIGHTS_EVENT_MARKER_ATTRIBUTE", "_MS.sampleRate", "ai.operation.name", "az.namespace",
    "client.address", "db.name", "db.namespace", "db.operation", "db.operation.name", "db.query.text",
    "db.statement", "db.system", "db.system.name", "device.id", "enduser.id", "enduser.pseudo.id", "enqueuedTime",
    "exception.message", "exception.stacktrace", "exception.type", "gen_ai.system", "host.name", "http.client_ip",
    "http.host", "http.method", "http.request.method", "http.response.status_code", "http.route", "http.scheme",
    "http.server_name", "http.status_code", "http.target", "http.url", "http.user_agent", "k8s.deployment.name",
    "k8s.pod.name", "message_bus.destination", "messaging.destination", "messaging.destination.name",
    "messaging.system", "microsoft.availability.duration", "microsoft.availability.id",
    "microsoft.availability.message", "microsoft.availability.name", "microsoft.availability.runLocation",
    "microsoft.availability.success", "microsoft.custom_event.name", "microsoft.custom_measurements",
    "net.host.name", "net.host.port", "net.peer.ip", "net.peer.name", "net.peer.port", "peer.address",
    "peer.service", "rpc.system", "server.address", "server.port", "service.instance.id", "service.name",
    "service.namespace", "service.version", "session.id", "telemetry.sdk.language", "telemetry.sdk.version",
    "url.full", "url.path", "url.query", "url.scheme", "user_agent.original", "user_agent.synthetic.type",
    "custom",
]
"""Every attribute key `otlp.py` reads."""
_ATTRIBUTES = st.lists(st.builds(lambda k, v: {"key": k, "value": v}, st.sampled_from(_SEMANTIC_KEYS), _ANY_VALUE),
                       max_size=8)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(kind=st.integers(0, 5), attributes=_ATTRIBUTES, body=_ANY_VALUE, severity=st.integers(0, 24))
def test_arbitrary_attribute_values_never_break_the_mapping(kind, attributes, body, severity):
    """Any attribute of any type under a semantic key still gives JSON-serialisable envelopes."""
    span = {"traceId": "01" * 16, "spanId": "02" * 8, "name": "s", "kind": kind, "attributes": attributes,
            "events": [{"name": "exception", "attributes": attributes}], "startTimeUnixNano": "5",
            "links": [{"traceId": "03" * 16, "spanId": "04" * 8, "attributes": attributes}]}
    traces = {"resourceSpans": [{"resource": {"attributes": attributes}, "scopeSpans": [{"spans": [span]}]}]}
    logs = {"resourceLogs": [{"scopeLogs": [{"logRecords": [
        {"body": body, "attributes": attributes, "severityNumber": severity}]}]}]}
    metrics = {"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "http.server.duration", "gauge": {"dataPoints": [{"asInt": "1", "attributes": attributes}]}},
        {"name": "http.client.duration", "gauge": {"dataPoints": [{"asInt": "1", "attributes": attributes}]}},
        {"name": "m", "sum": {"dataPoints": [{"asDouble": 1.5, "attributes": attributes}]}}]}]}]}
    for signal, document, convert in (("traces", traces, traces_to_envelopes), ("logs", logs, logs_to_envelopes),
                                      ("metrics", metrics, metrics_to_envelopes)):
        envelopes = convert(decode_otlp(signal, json.dumps(document).encode(), "application/json"), IKEY)
        json.dumps(envelopes)
