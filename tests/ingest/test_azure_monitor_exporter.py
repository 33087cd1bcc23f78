"""azure-monitor-opentelemetry-exporter, unmodified, sending to the collector."""

import logging

from azure.monitor.opentelemetry.exporter import (
    AzureMonitorLogExporter,
    AzureMonitorMetricExporter,
    AzureMonitorTraceExporter,
)
from opentelemetry.sdk._logs import LoggerProvider, LoggingHandler
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.trace import SpanKind, Status, StatusCode
from wait import rows_eventually

RESOURCE = Resource.create({"service.name": "scoring-api", "service.namespace": "ml", "service.instance.id": "pod-7"})


def _options(service):
    return {"connection_string": service["connection_string"], "disable_offline_storage": True}


def test_trace_exporter_lands_requests_dependencies_exceptions(collector):
    service = collector.create_service("otel-traces")
    provider = TracerProvider(resource=RESOURCE)
    provider.add_span_processor(SimpleSpanProcessor(AzureMonitorTraceExporter(**_options(service))))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("POST /score", kind=SpanKind.SERVER, attributes={
        "http.request.method": "POST", "http.route": "/score", "url.full": "http://127.0.0.1:5001/score",
        "http.response.status_code": 500, "model": "resnet",
    }) as server:
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT, attributes={
            "http.request.method": "GET", "url.full": "http://features.local:8000/f", "server.address": "features.local",
            "server.port": 8000, "http.response.status_code": 404,
        }):
            pass
        try:
            raise ValueError("bad input")
        except ValueError as error:
            server.record_exception(error)
            server.set_status(Status(StatusCode.ERROR))
    provider.shutdown()

    (request,) = rows_eventually(collector, "requests", service)
    assert request["name"] == "POST /score" and request["operation_Name"] == "POST /score"
    assert request["resultCode"] == "500" and request["success"] is False
    assert request["url"] == "http://127.0.0.1:5001/score"
    assert request["cloud_RoleName"] == "ml.scoring-api" and request["cloud_RoleInstance"] == "pod-7"
    assert request["customDimensions"]["model"] == "resnet"
    assert request["sdkVersion"].endswith(request["sdkVersion"].split(":")[-1]) and ":otel" in request["sdkVersion"]

    (dependency,) = rows_eventually(collector, "dependencies", service)
    assert dependency["type"] == "HTTP" and dependency["resultCode"] == "404"
    assert dependency["target"] == "features.local:8000"
    assert dependency["operation_ParentId"] == request["id"]

    (exception,) = rows_eventually(collector, "exceptions", service)
    assert exception["type"] == "ValueError" and exception["message"] == "bad input"
    assert exception["operation_Id"] == request["operation_Id"]
    assert exception["details"][0]["parsedStack"][0]["method"] == "test_trace_exporter_lands_requests_dependencies_exceptions"
    assert "Traceback" in exception["details"][0]["rawStack"]

    # The exporter's _OTELRESOURCE_ metric is SDK self-telemetry, not a user metric.
    assert rows_eventually(collector, "customMetrics", service, count=0, timeout=0.5) == []


def test_log_exporter_lands_traces_with_severity_and_extra(collector):
    service = collector.create_service("otel-logs")
    provider = LoggerProvider(resource=RESOURCE)
    provider.add_log_record_processor(SimpleLogRecordProcessor(AzureMonitorLogExporter(**_options(service))))
    logger = logging.getLogger(f"otel-{service['name']}")
    logger.setLevel(logging.DEBUG)
    handler = LoggingHandler(logger_provider=provider)
    logger.addHandler(handler)
    logger.info("scored", extra={"input_rows": 3})
    logger.error("model drift")
    try:
        {}["missing"]
    except KeyError:
        logger.exception("lookup failed")
    provider.shutdown()
    logger.removeHandler(handler)

    info, error = rows_eventually(collector, "traces", service, count=2)
    assert (info["message"], info["severityLevel"]) == ("scored", 1)
    assert info["customDimensions"]["input_rows"] == "3"
    assert (error["message"], error["severityLevel"]) == ("model drift", 3)
    (exception,) = rows_eventually(collector, "exceptions", service)
    assert exception["type"] == "KeyError" and exception["severityLevel"] == 3


def test_metric_exporter_lands_custom_metrics(collector):
    service = collector.create_service("otel-metrics")
    reader = PeriodicExportingMetricReader(AzureMonitorMetricExporter(**_options(service)), export_interval_millis=3_600_000)
    provider = MeterProvider(resource=RESOURCE, metric_readers=[reader])
    meter = provider.get_meter("test")
    meter.create_counter("predictions").add(5, {"model": "resnet"})
    histogram = meter.create_histogram("inference_ms")
    for value in (10, 20, 60):
        histogram.record(value, {"model": "resnet"})
    provider.shutdown()

    rows = {r["name"]: r for r in rows_eventually(collector, "customMetrics", service, count=2)}
    assert rows["predictions"]["value"] == 5 and rows["predictions"]["customDimensions"] == {"model": "resnet"}
    histogram_row = rows["inference_ms"]
    assert (histogram_row["valueSum"], histogram_row["valueCount"]) == (90, 3)
    assert (histogram_row["valueMin"], histogram_row["valueMax"]) == (10, 60)
