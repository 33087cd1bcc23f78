"""Metrics: every data point -> MetricData."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from collector.ingest.otlp import common, semconv
from collector.ingest.otlp.common import Envelope
from collector.ingest.otlp.semconv import Attrs

_HTTP_CLIENT_DURATIONS = ("http.client.request.duration", "http.client.duration")
_HTTP_SERVER_DURATIONS = ("http.server.request.duration", "http.server.duration")
_AUTOCOLLECTED_METRICS = frozenset((
    *_HTTP_CLIENT_DURATIONS, *_HTTP_SERVER_DURATIONS, "http.server.request.size",
    "http.server.response.size", "http.server.active_requests", "http.client.request.size",
    "http.client.response.size",
))
_PERFORMANCE_COUNTER_NAMES = {
    "azuremonitor.performancecounter.memoryavailablebytes": "\\Memory\\Available Bytes",
    "azuremonitor.performancecounter.exceptionssec":
        "\\.NET CLR Exceptions(??APP_CLR_PROC??)\\# of Exceps Thrown / sec",
    "azuremonitor.performancecounter.requestexecutiontime":
        "\\ASP.NET Applications(??APP_W3SVC_PROC??)\\Request Execution Time",
    "azuremonitor.performancecounter.requestssec": "\\ASP.NET Applications(??APP_W3SVC_PROC??)\\Requests/Sec",
    "azuremonitor.performancecounter.processtime": "\\Process(??APP_WIN32_PROC??)\\% Processor Time",
    "azuremonitor.performancecounter.processtimenormalized":
        "\\Process(??APP_WIN32_PROC??)\\% Processor Time Normalized",
    "azuremonitor.performancecounter.processiobytessec": "\\Process(??APP_WIN32_PROC??)\\IO Data Bytes/sec",
    "azuremonitor.performancecounter.processprivatebytes": "\\Process(??APP_WIN32_PROC??)\\Private Bytes",
    "azuremonitor.performancecounter.processortotalprocessortime": "\\Processor(_Total)\\% Processor Time",
}


def metrics_to_envelopes(request: ExportMetricsServiceRequest, ikey: str) -> list[Envelope]:
    """One MetricData envelope per data point, as the metric exporter sends them.

    Values are taken as they arrive: the Azure exporter asks the SDK for delta counters and
    histograms, while OTLP exporters default to cumulative, whose points are running totals.
    The autocollected HTTP instruments become App Insights standard metrics (`_MS.MetricId`), and
    those the exporter does not support (request/response sizes, active requests) are dropped as it does.
    """
    envelopes = []
    for resource_metrics in request.resource_metrics:
        resource_tags = common.resource_tags(common.attributes(resource_metrics.resource.attributes))
        for scope_metrics in resource_metrics.scope_metrics:
            for metric in scope_metrics.metrics:
                for point, value in _points(metric):
                    envelope = _metric_envelope(metric.name, point, value, resource_tags, ikey)
                    if envelope is not None:
                        envelopes.append(envelope)
    return envelopes


def _points(metric: Any) -> Iterator[tuple[Any, dict[str, Any]]]:
    """Each data point with its App Insights value fields (`value`, `count`, `min`, `max`)."""
    kind = metric.WhichOneof("data")
    if kind in ("sum", "gauge"):
        for point in getattr(metric, kind).data_points:
            number = getattr(point, point.WhichOneof("value")) if point.WhichOneof("value") else 0
            yield point, {"value": number, "count": 1}
    elif kind in ("histogram", "exponential_histogram"):
        for point in getattr(metric, kind).data_points:
            fields = {"value": point.sum, "count": int(point.count)}
            for bound in ("min", "max"):
                if point.HasField(bound):
                    fields[bound] = getattr(point, bound)
            yield point, fields
    elif kind == "summary":
        for point in metric.summary.data_points:
            yield point, {"value": point.sum, "count": int(point.count), **_summary_bounds(point)}


def _summary_bounds(point: Any) -> dict[str, float]:
    bounds = {}
    for quantile in point.quantile_values:
        if quantile.quantile == 0.0:
            bounds["min"] = quantile.value
        elif quantile.quantile == 1.0:
            bounds["max"] = quantile.value
    return bounds


def _metric_envelope(name: str, point: Any, value: dict, resource_tags: dict, ikey: str) -> Envelope | None:
    attributes = common.attributes(point.attributes)
    tags = dict(resource_tags)
    if semconv.is_synthetic(attributes):
        tags["ai.operation.syntheticSource"] = "True"
    if name in _AUTOCOLLECTED_METRICS:
        properties = _standard_metric_properties(name, attributes, tags)
        if properties is None:
            return None
    else:
        properties = common.properties(attributes)
    metric_name = _PERFORMANCE_COUNTER_NAMES.get(name, name)
    data = {"ver": common.ENVELOPE_VERSION, "properties": properties,
            "metrics": [{"name": str(metric_name)[:1024], **value}]}
    return common.envelope("Metric", ikey, point.time_unix_nano, tags, data)


def _standard_metric_properties(name: str, attributes: Attrs, tags: dict) -> dict[str, str] | None:
    """The properties App Insights standard metrics carry, for the HTTP duration instruments."""
    status_code = semconv.status_code(attributes)
    success = str(status_code != 0 and status_code < 400)
    role = {"cloud/roleInstance": str(tags.get("ai.cloud.roleInstance", "")),
            "cloud/roleName": str(tags.get("ai.cloud.role", ""))}
    if name in _HTTP_CLIENT_DURATIONS:
        target, _ = semconv.http_target_and_path(attributes, "")
        return {"_MS.MetricId": "dependencies/duration", "_MS.IsAutocollected": "True",
                "Dependency.Type": "http", "Dependency.Success": success, "dependency/target": str(target),
                "dependency/resultCode": str(status_code), **role}
    if name in _HTTP_SERVER_DURATIONS:
        properties = {"_MS.MetricId": "requests/duration", "_MS.IsAutocollected": "True",
                      "request/resultCode": str(status_code)}
        if attributes.get("user_agent.synthetic.type"):
            properties["operation/synthetic"] = "True"
        return {**properties, **role, "Request.Success": success}
    return None
