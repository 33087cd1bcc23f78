"""The OpenTelemetry SDK's OTLP/HTTP exporters, unmodified, sending to the collector."""

import logging

import pytest
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind
from wait import rows_eventually

RESOURCE = Resource.create({"service.name": "scoring-api"})


def _headers(service):
    return {"x-instrumentation-key": service["instrumentation_key"]}


@pytest.mark.parametrize("compression", [Compression.NoCompression, Compression.Gzip])
def test_spans_map_as_azure_monitor_does(collector, compression):
    service = collector.create_service("otlp-traces")
    exporter = OTLPSpanExporter(endpoint=f"{collector.url}/v1/traces", headers=_headers(service), compression=compression)
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /score", kind=SpanKind.SERVER, attributes={
        "http.request.method": "POST", "http.route": "/score", "http.response.status_code": 200,
        "url.full": "http://127.0.0.1:5001/score",
    }) as server:
        with tracer.start_as_current_span("SELECT features", kind=SpanKind.CLIENT, attributes={
            "db.system": "postgresql", "db.statement": "SELECT 1", "db.name": "feat", "server.address": "pg",
        }):
            pass
        trace_id = format(server.get_span_context().trace_id, "032x")
        span_id = format(server.get_span_context().span_id, "016x")
    provider.shutdown()

    (request,) = rows_eventually(collector, "requests", service)
    assert (request["name"], request["resultCode"], request["success"]) == ("POST /score", "200", True)
    assert request["operation_Id"] == trace_id and request["id"] == span_id
    assert request["cloud_RoleName"] == "scoring-api"
    (dependency,) = rows_eventually(collector, "dependencies", service)
    assert dependency["type"] == "postgresql" and dependency["data"] == "SELECT 1"
    assert dependency["operation_Id"] == trace_id and dependency["operation_ParentId"] == span_id


def test_logs_and_metrics(collector):
    service = collector.create_service("otlp-logs")
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{collector.url}/v1/logs", headers=_headers(service)))
    )
    logger = logging.getLogger(f"otlp-{service['name']}")
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    logger.warning("drift detected", extra={"feature": "age"})
    provider.shutdown()
    logger.removeHandler(handler)
    (trace,) = rows_eventually(collector, "traces", service)
    assert (trace["message"], trace["severityLevel"]) == ("drift detected", 2)
    assert trace["customDimensions"]["feature"] == "age"

    reader = PeriodicExportingMetricReader(
        OTLPMetricExporter(endpoint=f"{collector.url}/v1/metrics", headers=_headers(service)), export_interval_millis=3_600_000
    )
    meters = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meters.get_meter("test").create_counter("predictions").add(7)
    meters.shutdown()
    (metric,) = rows_eventually(collector, "customMetrics", service)
    assert (metric["name"], metric["value"]) == ("predictions", 7)


def test_unknown_key_and_garbage_are_refused_clearly(app_collector):
    service = app_collector.create_service("otlp-bad")
    headers = {"content-type": "application/x-protobuf"}
    response = app_collector.http.post("/v1/traces", content=b"", headers={**headers, "x-instrumentation-key": "nope"})
    assert response.status_code == 401 and "invalid instrumentation key" in response.text
    response = app_collector.http.post("/v1/traces", content=b"\xff\x00garbage", headers={**headers, **_headers(service)})
    assert response.status_code == 400 and response.json()["message"]
