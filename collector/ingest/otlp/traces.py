"""Traces: spans -> Request / RemoteDependency, span events -> Exception / Message."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlparse

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from collector.ingest.otlp import common, semconv
from collector.ingest.otlp.common import Envelope
from collector.ingest.otlp.semconv import Attrs

_METRIC_EXTRACTING_SCOPES = frozenset((
    "opentelemetry.instrumentation.asgi", "opentelemetry.instrumentation.django",
    "opentelemetry.instrumentation.falcon", "opentelemetry.instrumentation.fastapi",
    "opentelemetry.instrumentation.flask", "opentelemetry.instrumentation.pyramid",
    "opentelemetry.instrumentation.requests", "opentelemetry-instrumentation-sqlalchemy",
    "opentelemetry.instrumentation.starlette", "opentelemetry-instrumentation-tornado",
    "opentelemetry-instrumentation-urllib", "opentelemetry.instrumentation.urllib3",
    "opentelemetry.instrumentation.httpx", "opentelemetry.instrumentation.wsgi",
))
_REQUEST_KINDS = (Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CONSUMER)


def traces_to_envelopes(request: ExportTraceServiceRequest, ikey: str) -> list[Envelope]:
    """One envelope per span, followed by one per span event, as the trace exporter sends them.

    The `_OTELRESOURCE_` metric the Azure exporter adds to every batch is not produced: it is SDK
    self-telemetry that the collector keeps out of `customMetrics` anyway.
    """
    envelopes = []
    for resource_spans in request.resource_spans:
        resource_tags = common.resource_tags(common.attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = common.attributes(span.attributes)
                envelopes.append(_span_envelope(span, attributes, scope_spans.scope.name, resource_tags, ikey))
                envelopes.extend(_span_event_envelopes(span, attributes, resource_tags, ikey))
    return envelopes


def _span_envelope(span: Span, attributes: Attrs, scope: str, resource_tags: dict, ikey: str) -> Envelope:
    tags = _span_tags(span, attributes, resource_tags)
    if span.kind in _REQUEST_KINDS:
        kind, data = "Request", _request_data(span, attributes, tags)
    else:
        kind, data = "RemoteDependency", _dependency_data(span, attributes, tags)
    data["properties"] = _span_properties(span, attributes, scope)
    envelope = common.envelope(kind, ikey, span.start_time_unix_nano, tags, data)
    _sample_rate(envelope, attributes)
    return envelope


def _sample_rate(envelope: Envelope, span_attributes: Attrs) -> None:
    rate = span_attributes.get(semconv.SAMPLE_RATE)
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        envelope["sampleRate"] = rate


def _span_tags(span: Span, attributes: Attrs, resource_tags: dict) -> dict[str, Any]:
    tags = dict(resource_tags)
    tags["ai.operation.id"] = common.hex_id(span.trace_id, 32)
    common.user_tags(attributes, tags)
    if int.from_bytes(span.parent_span_id, "big"):
        tags["ai.operation.parentId"] = common.hex_id(span.parent_span_id, 16)
    if isinstance(attributes.get("session.id"), str):
        tags["ai.session.id"] = attributes["session.id"]
    return tags


def _span_duration(span: Span) -> str:
    if not (span.start_time_unix_nano and span.end_time_unix_nano):
        return common.duration(0)
    return common.duration(span.end_time_unix_nano - span.start_time_unix_nano)


def _is_ok(span: Span) -> bool:
    return span.status.code != Status.STATUS_CODE_ERROR


def _span_properties(span: Span, attributes: Attrs, scope: str) -> dict[str, str]:
    properties = common.properties(attributes, lambda key: not semconv.is_standard_attribute(key))
    if scope in _METRIC_EXTRACTING_SCOPES:
        properties["_MS.ProcessedByMetricExtractors"] = "True"
    if span.links:
        links = [{"operation_Id": common.hex_id(link.trace_id, 32), "id": common.hex_id(link.span_id, 16)}
                 for link in span.links[:103]]
        properties["_MS.links"] = json.dumps(links)
    return properties


# Requests


def _request_data(span: Span, attributes: Attrs, tags: dict) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ver": common.ENVELOPE_VERSION, "name": span.name, "id": common.hex_id(span.span_id, 16),
        "duration": _span_duration(span), "responseCode": "0", "success": _is_ok(span),
        "properties": {}, "measurements": common.measurements(attributes),
    }
    tags["ai.operation.name"] = span.name
    location_ip = semconv.location_ip(attributes)
    if location_ip:
        tags["ai.location.ip"] = location_ip
    if semconv.AZ_NAMESPACE in attributes:
        _azure_sdk_request(span, attributes, data)
    elif semconv.is_http(attributes):
        _http_request(span, attributes, data, tags)
    elif "messaging.system" in attributes:
        _messaging_request(attributes, data)
    if tags.get("ai.operation.name"):
        data["name"] = str(tags["ai.operation.name"])[:1024]
    data["responseCode"] = data["responseCode"][:1024]
    for field, limit in (("source", 1024), ("url", 2048)):
        if data.get(field):
            data[field] = str(data[field])[:limit]
    return data


def _azure_sdk_request(span: Span, attributes: Attrs, data: dict) -> None:
    """Event Hubs / Service Bus consumer spans: source, and time since the linked messages were enqueued."""
    source = semconv.azure_sdk_target(attributes)
    if source is not None:
        data["source"] = source
    if span.links:
        total = 0.0
        for link in span.links:
            enqueued = common.attributes(link.attributes).get("enqueuedTime")
            if isinstance(enqueued, int):
                total += span.start_time_unix_nano / 1000000 - enqueued
        data["measurements"]["timeSinceEnqueued"] = max(0, total / len(span.links))


def _http_request(span: Span, attributes: Attrs, data: dict, tags: dict) -> None:
    user_agent = attributes.get("user_agent.original") or attributes.get("http.user_agent")
    if user_agent:
        tags["ai.user.userAgent"] = user_agent
    url = semconv.request_url(attributes)
    data["url"] = url
    if "http.route" in attributes:
        tags["ai.operation.name"] = f"{semconv.http_method(attributes)} {attributes['http.route']}"
    elif url:
        try:
            tags["ai.operation.name"] = f"{semconv.http_method(attributes)} {urlparse(url).path or '/'}"
        except (ValueError, TypeError, AttributeError):
            pass
    status_code = semconv.status_code(attributes)
    data["responseCode"] = str(status_code)
    data["success"] = _is_ok(span) and status_code != 0 and status_code not in range(400, 500)


def _messaging_request(attributes: Attrs, data: dict) -> None:
    destination = attributes.get("messaging.destination")
    if not destination:
        return
    peer = attributes.get("client.address") or attributes.get("net.peer.name")
    if peer:
        data["source"] = f"{peer}/{destination}"
    elif attributes.get("net.peer.ip"):
        data["source"] = f"{attributes['net.peer.ip']}/{destination}"
    else:
        data["source"] = attributes.get("messaging.destination", "")


# Dependencies


def _dependency_data(span: Span, attributes: Attrs, tags: dict) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ver": common.ENVELOPE_VERSION, "name": span.name, "id": common.hex_id(span.span_id, 16), "resultCode": "0",
        "duration": _span_duration(span), "success": _is_ok(span),  # status alone decides, as in the exporter
        "properties": {}, "measurements": common.measurements(attributes),
    }
    tags["ai.operation.name"] = span.name
    target = semconv.peer_target(attributes)
    if span.kind == Span.SPAN_KIND_CLIENT:
        target = _client_dependency(attributes, data, tags, target)
    elif span.kind == Span.SPAN_KIND_PRODUCER:
        target = _producer_dependency(attributes, data, target)
    else:
        data["type"] = _internal_type(attributes)
    _truncate_dependency(data, tags, target)
    return data


def _truncate_dependency(data: dict, tags: dict, target: Any) -> None:
    if tags.get("ai.operation.name"):
        data["name"] = str(tags["ai.operation.name"])[:1024]
    elif data["name"]:
        data["name"] = str(data["name"])[:1024]
    data["resultCode"] = str(data["resultCode"])[:1024]
    for field, limit in (("data", 8192), ("type", 1024)):
        if data.get(field):
            data[field] = str(data[field])[:limit]
        elif data.get(field, "") is None:
            del data[field]
    if target:
        data["target"] = str(target)[:1024]


def _internal_type(attributes: Attrs) -> str:
    if semconv.GEN_AI_SYSTEM in attributes:
        return f"GenAI | {attributes[semconv.GEN_AI_SYSTEM]}"
    if semconv.AZ_NAMESPACE in attributes:
        return f"InProc | {attributes[semconv.AZ_NAMESPACE]}"
    return "InProc"


def _producer_dependency(attributes: Attrs, data: dict, target: Any) -> Any:
    if semconv.AZ_NAMESPACE in attributes:
        data["type"] = f"Queue Message | {attributes[semconv.AZ_NAMESPACE]}"
        return semconv.azure_sdk_target(attributes)
    data["type"] = "Queue Message"
    if attributes.get("messaging.system"):
        data["type"] += f" | {attributes['messaging.system']}"
    return semconv.messaging_target(attributes, target)


def _client_dependency(attributes: Attrs, data: dict, tags: dict, target: Any) -> Any:
    """Type, data and target of a CLIENT span by its semantic attributes; GenAI wins the type."""
    gen_ai = attributes.get(semconv.GEN_AI_SYSTEM, "")
    if semconv.AZ_NAMESPACE in attributes:
        data["type"] = attributes[semconv.AZ_NAMESPACE]
        azure_target = semconv.azure_sdk_target(attributes)
        if azure_target is not None:
            data["target"] = azure_target
    elif semconv.is_http(attributes):
        target = _http_dependency(attributes, data, tags)
    elif "db.system.name" in attributes or "db.system" in attributes:
        target = _db_dependency(attributes, data, target)
    elif "messaging.system" in attributes:
        data["type"] = attributes["messaging.system"]
        target = semconv.messaging_target(attributes, target)
    elif "rpc.system" in attributes:
        data["type"] = "rpc.system"  # sic: the exporter sends the attribute's name, not its value
        if not target and attributes.get("rpc.system"):
            target = str(attributes["rpc.system"])
    elif semconv.GEN_AI_SYSTEM in attributes:
        data["type"] = f"GenAI | {gen_ai}"
    else:
        data["type"] = "N/A"
    if gen_ai:
        data["type"] = f"GenAI | {gen_ai}"
        if not target and not data.get("target"):
            target = gen_ai
    return target


def _http_dependency(attributes: Attrs, data: dict, tags: dict) -> Any:
    data["type"] = "HTTP"
    user_agent = attributes.get("user_agent.original") or attributes.get("http.user_agent")
    if user_agent:
        tags["ai.user.userAgent"] = user_agent
    url = semconv.dependency_url(attributes)
    method = semconv.http_method(attributes)
    if "http.route" in attributes:
        tags["ai.operation.name"] = f"{method} {attributes['http.route']}"
    if url:
        data["data"] = url
    target, path = semconv.http_target_and_path(attributes, url)
    if path:
        data["name"] = tags["ai.operation.name"] = f"{method} {path}"
    data["resultCode"] = str(semconv.status_code(attributes))
    return target


def _db_dependency(attributes: Attrs, data: dict, target: Any) -> Any:
    db_system = attributes.get("db.system.name") or attributes.get("db.system")
    if isinstance(db_system, str) and db_system in semconv.DB_TYPES:
        data["type"] = semconv.DB_TYPES[db_system]
    elif str(db_system) in semconv.SQL_SYSTEMS:
        data["type"] = "SQL"
    else:
        data["type"] = db_system
    for statement in ("db.query.text", "db.statement", "db.operation.name", "db.operation"):
        if statement in attributes:
            data["data"] = attributes[statement]
            break
    return semconv.db_target(target, db_system, attributes)


# Span events


def _span_event_envelopes(span: Span, span_attributes: Attrs, resource_tags: dict, ikey: str) -> list[Envelope]:
    """An `exception` event becomes ExceptionData (with the `stack` string), any other MessageData."""
    envelopes = []
    for event in span.events:
        attributes = common.attributes(event.attributes)
        tags = _span_event_tags(span, span_attributes, attributes, resource_tags)
        properties = common.properties(attributes, lambda key: not semconv.is_standard_attribute(key))
        measurements = common.measurements(attributes)
        if event.name == "exception":
            kind, data = "Exception", common.exception_data(attributes, properties, measurements)
        else:
            kind = "Message"
            data = {"ver": common.ENVELOPE_VERSION, "message": str(event.name)[:32768],
                    "properties": properties, "measurements": measurements}
        envelope = common.envelope(kind, ikey, event.time_unix_nano, tags, data)
        _sample_rate(envelope, span_attributes)
        envelopes.append(envelope)
    return envelopes


def _span_event_tags(span: Span, span_attributes: Attrs, attributes: Attrs, resource_tags: dict) -> dict:
    tags = dict(resource_tags)
    tags["ai.operation.id"] = common.hex_id(span.trace_id, 32)
    session_id = attributes.get("session.id")
    if not isinstance(session_id, str):
        session_id = span_attributes.get("session.id")
    if isinstance(session_id, str):
        tags["ai.session.id"] = session_id
    if int.from_bytes(span.span_id, "big"):
        tags["ai.operation.parentId"] = common.hex_id(span.span_id, 16)
    return tags
