"""opencensus-ext-azure 1.1.x, unmodified, sending to the collector: rows land column by column."""

import logging
import time

from opencensus.ext.azure.log_exporter import AzureEventHandler, AzureLogHandler
from opencensus.ext.azure.trace_exporter import AzureExporter
from opencensus.trace.samplers import AlwaysOnSampler
from opencensus.trace.span import SpanKind
from opencensus.trace.tracer import Tracer
from wait import rows_eventually


def _handler(cls, service):
    return cls(
        connection_string=service["connection_string"],
        enable_local_storage=False,
        export_interval=0.2,
        enable_stats_metrics=False,
    )


def test_log_handler_lands_traces_and_exceptions(collector):
    service = collector.create_service("oc-logs")
    logger = logging.getLogger(f"oc-{service['name']}")
    logger.setLevel(logging.DEBUG)
    handler = _handler(AzureLogHandler, service)
    logger.addHandler(handler)
    logger.warning("low confidence %s", 0.42, extra={"custom_dimensions": {"input": {"data": [1, 2]}, "score": 0.42}})
    try:
        1 / 0  # noqa: B018 (the exception is the point)
    except ZeroDivisionError:
        logger.exception("scoring failed", extra={"custom_dimensions": {"request_id": "r-1"}})
    handler.flush()
    logger.removeHandler(handler)

    (trace,) = rows_eventually(collector, "traces", service)
    assert trace["message"] == "low confidence 0.42"
    assert trace["severityLevel"] == 2
    dims = trace["customDimensions"]
    assert dims["input"] == {"data": [1, 2]}  # nested objects stay reachable
    assert dims["score"] == "0.42"  # scalars stored as strings, as App Insights does
    assert dims["level"] == "WARNING" and dims["lineNumber"].isdigit()
    assert trace["sdkVersion"].startswith("py3") and ":oc" in trace["sdkVersion"]
    assert trace["operation_Id"] == "0" * 32
    assert trace["iKey"] == service["instrumentation_key"]
    assert trace["itemType"] == "trace" and trace["itemCount"] == 1

    (exception,) = rows_eventually(collector, "exceptions", service)
    assert exception["type"] == "ZeroDivisionError"
    assert exception["innermostType"] == "ZeroDivisionError"
    assert exception["severityLevel"] == 3
    assert exception["method"] == "test_log_handler_lands_traces_and_exceptions"
    assert exception["problemId"] == "ZeroDivisionError at test_log_handler_lands_traces_and_exceptions"
    assert exception["details"][0]["parsedStack"][0]["fileName"].endswith("test_opencensus.py")
    assert exception["customDimensions"]["request_id"] == "r-1"


def test_event_handler_lands_custom_events(collector):
    service = collector.create_service("oc-events")
    logger = logging.getLogger(f"oc-{service['name']}")
    handler = _handler(AzureEventHandler, service)
    logger.addHandler(handler)
    logger.warning("model_loaded", extra={"custom_dimensions": {"model": "resnet"}, "custom_measurements": {"load_ms": 812.5}})
    handler.flush()
    logger.removeHandler(handler)

    (event,) = rows_eventually(collector, "customEvents", service)
    assert event["name"] == "model_loaded"
    assert event["customDimensions"] == {"model": "resnet"}
    assert event["customMeasurements"] == {"load_ms": 812.5}


def test_exporter_spans_land_requests_and_dependencies(collector):
    service = collector.create_service("oc-spans")
    exporter = AzureExporter(
        connection_string=service["connection_string"], enable_local_storage=False, export_interval=0.2
    )
    tracer = Tracer(exporter=exporter, sampler=AlwaysOnSampler())
    with tracer.span(name="score") as span:
        span.span_kind = SpanKind.SERVER
        span.add_attribute("http.method", "POST")
        span.add_attribute("http.route", "/score")
        span.add_attribute("http.url", "http://127.0.0.1:5001/score")
        span.add_attribute("http.status_code", 503)
        span.add_attribute("model", "resnet")
        with tracer.span(name="feature-store") as child:
            child.span_kind = SpanKind.CLIENT
            child.add_attribute("component", "HTTP")
            child.add_attribute("http.method", "GET")
            child.add_attribute("http.url", "http://features.local:8000/f?id=3")
            child.add_attribute("http.status_code", 200)
            time.sleep(0.02)
    tracer.finish()
    exporter._stop(timeout=5)  # flush what its worker holds, as the exporter itself does at exit

    (request,) = rows_eventually(collector, "requests", service)
    assert request["name"] == "POST /score"
    assert request["url"] == "http://127.0.0.1:5001/score"
    assert request["resultCode"] == "503"
    assert request["success"] is False
    assert request["duration"] >= 20
    assert request["performanceBucket"] == "<250ms"
    assert request["customDimensions"]["model"] == "resnet"
    assert len(request["operation_Id"]) == 32

    (dependency,) = rows_eventually(collector, "dependencies", service)
    assert dependency["type"] == "HTTP"
    assert dependency["target"] == "features.local:8000"
    assert dependency["data"] == "http://features.local:8000/f?id=3"
    assert dependency["resultCode"] == "200" and dependency["success"] is True
    assert dependency["operation_Id"] == request["operation_Id"]
    assert dependency["operation_ParentId"] == request["id"]
    assert 20 <= dependency["duration"] <= request["duration"]
