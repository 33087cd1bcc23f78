"""OTLP/HTTP bodies turned into App Insights envelopes, the way Azure Monitor's exporter builds them.

A span must look the same whichever SDK sent it, so OTLP is not mapped to rows directly: each span,
span event, log record and metric point becomes the Breeze envelope that
azure-monitor-opentelemetry-exporter 1.0.0b58 would have sent for the same SDK object
(`export/trace/_exporter.py`, `export/logs/_exporter.py`, `export/metrics/_exporter.py`, `_utils.py`),
and then goes through the one envelope mapper (`envelope.py`) like everything else.

The rules are ported, not imported: the collector does not depend on the Azure exporter. Where the
exporter reads an SDK object this module reads the protobuf, after turning attributes into the Python
values the SDK would hold (arrays as tuples), so `str(value)` gives the same property strings.
`tests/test_otlp_mapping.py` runs both on the same SDK objects and compares them field by field.

Deliberate differences from the exporter (the first three are facts it takes from its own process):
- `ai.internal.sdkVersion` is `otlp:<telemetry.sdk.language>:<telemetry.sdk.version>`;
- `ai.device.id` is the resource's `device.id`, else `host.name`; no `ai.device.locale`;
  `ai.device.type` is "Other" as the exporter sends;
- without `k8s.pod.name`/`service.instance.id`, `ai.cloud.roleInstance` is `host.name` or absent
  (the exporter uses the hostname of the process it runs in);
- durations keep microseconds (`d.hh:mm:ss.ffffff`; the exporter rounds to milliseconds), and a span
  that ends before it starts gets 0 rather than a negative duration;
- exponential histograms and summaries carry their sum, count, min and max (the exporter sends 0);
- no `_OTELRESOURCE_` metric per trace batch (SDK self-telemetry);
- where the exporter would crash or send a non-string (an attribute of the wrong type under a
  semantic key), tags and string fields are rendered with `str()` and a non-numeric
  `_MS.sampleRate` is ignored: every OTLP body that decodes gives JSON-ready envelopes.
The exporter's own oddities are kept on purpose, so rows match: `type` "rpc.system" for RPC
spans, and a target of "host:None" when `server.address` comes without `server.port`.
"""

from __future__ import annotations

import base64
import json
import math
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlparse

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

Attrs = dict[str, Any]
Envelope = dict[str, Any]

# --------------------------------------------------------------------------------------------------
# Decoding


class OtlpDecodeError(ValueError):
    """The body is not a valid OTLP request of the signal; the message says what is wrong and where."""

    status_code = 400


class OtlpContentTypeError(OtlpDecodeError):
    """The content type is neither OTLP protobuf nor OTLP JSON (answer 415)."""

    status_code = 415


_REQUEST_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceRequest,
    "logs": ExportLogsServiceRequest,
    "metrics": ExportMetricsServiceRequest,
}
_PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
_JSON_TYPES = ("application/json",)
_JSON_ID_FIELDS = {"traceId": 16, "trace_id": 16, "spanId": 8, "span_id": 8,
                   "parentSpanId": 8, "parent_span_id": 8}


_RESPONSE_TYPES: dict[str, type[Message]] = {
    "traces": ExportTraceServiceResponse,
    "logs": ExportLogsServiceResponse,
    "metrics": ExportMetricsServiceResponse,
}
_REJECTED_FIELDS = {"traces": "rejected_spans", "logs": "rejected_log_records", "metrics": "rejected_data_points"}


def export_response(signal: str, rejected: int, message: str) -> Message:
    """The signal's Export*ServiceResponse carrying a partial success."""
    response = _RESPONSE_TYPES[signal]()
    setattr(response.partial_success, _REJECTED_FIELDS[signal], rejected)
    response.partial_success.error_message = message
    return response


def decode_otlp(signal: str, body: bytes, content_type: str) -> Message:
    """Parse an OTLP/HTTP request body (already decompressed) into the signal's Export*ServiceRequest."""
    request_type = _REQUEST_TYPES.get(signal)
    if request_type is None:
        raise OtlpDecodeError(f"unknown OTLP signal {signal!r}: expected traces, logs or metrics")
    if not body:
        raise OtlpDecodeError(f"empty body: expected an OTLP {request_type.__name__}")
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type in _PROTOBUF_TYPES:
        message = _parse_protobuf(request_type, body)
    elif media_type in _JSON_TYPES:
        message = _parse_json(request_type, body)
    else:
        raise OtlpContentTypeError(
            f"unsupported content type {content_type!r}: send application/x-protobuf or application/json"
        )
    _check_ids(message)
    return message


def _parse_protobuf(request_type: type[Message], body: bytes) -> Message:
    message = request_type()
    try:
        message.ParseFromString(body)
    except (DecodeError, RecursionError) as exc:
        raise OtlpDecodeError(f"body is not a protobuf {request_type.__name__}: {exc}") from None
    return message


def _parse_json(request_type: type[Message], body: bytes) -> Message:
    """OTLP JSON: proto3 JSON mapping, except that trace and span ids are hex, not base64."""
    try:
        document = json.loads(body.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise OtlpDecodeError(f"body is not UTF-8: invalid byte at offset {exc.start}") from None
    except ValueError as exc:
        raise OtlpDecodeError(f"body is not valid JSON: {exc}") from None
    except RecursionError:
        raise OtlpDecodeError("body is not valid JSON: nested too deeply") from None
    if not isinstance(document, dict):
        raise OtlpDecodeError(f"OTLP JSON body must be an object, got {type(document).__name__}")
    try:
        _hex_ids_to_base64(document)
        return json_format.ParseDict(document, request_type(), ignore_unknown_fields=True)
    except json_format.ParseError as exc:
        raise OtlpDecodeError(f"body is not an OTLP JSON {request_type.__name__}: {exc}") from None
    except RecursionError:
        raise OtlpDecodeError("OTLP JSON body is nested too deeply") from None


def _hex_ids_to_base64(node: object) -> None:
    """Rewrite hex trace/span ids to the base64 json_format expects; base64 ids are left alone.

    Only message fields are dict keys in OTLP JSON (attribute keys are values of "key"), so any
    dict key named like an id field is one. Hex and base64 of a 16- or 8-byte id differ in length.
    """
    if isinstance(node, list):
        for item in node:
            _hex_ids_to_base64(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            size = _JSON_ID_FIELDS.get(key)
            if size is not None and isinstance(value, str) and len(value) == 2 * size:
                try:
                    node[key] = base64.b64encode(bytes.fromhex(value)).decode("ascii")
                except ValueError:
                    pass
            else:
                _hex_ids_to_base64(value)


def _check_ids(message: Message) -> None:
    """Ids of the wrong length cannot be rendered as App Insights operation ids; name the culprit."""
    if isinstance(message, ExportTraceServiceRequest):
        for path, span in _spans_with_paths(message):
            _check_id(f"{path}.traceId", span.trace_id, 16, required=True)
            _check_id(f"{path}.spanId", span.span_id, 8, required=True)
            _check_id(f"{path}.parentSpanId", span.parent_span_id, 8)
            for k, link in enumerate(span.links):
                _check_id(f"{path}.links[{k}].traceId", link.trace_id, 16, required=True)
                _check_id(f"{path}.links[{k}].spanId", link.span_id, 8, required=True)
    elif isinstance(message, ExportLogsServiceRequest):
        for i, resource_logs in enumerate(message.resource_logs):
            for j, scope_logs in enumerate(resource_logs.scope_logs):
                for k, record in enumerate(scope_logs.log_records):
                    path = f"resourceLogs[{i}].scopeLogs[{j}].logRecords[{k}]"
                    _check_id(f"{path}.traceId", record.trace_id, 16)
                    _check_id(f"{path}.spanId", record.span_id, 8)


def _spans_with_paths(request: ExportTraceServiceRequest) -> Iterator[tuple[str, Span]]:
    for i, resource_spans in enumerate(request.resource_spans):
        for j, scope_spans in enumerate(resource_spans.scope_spans):
            for k, span in enumerate(scope_spans.spans):
                yield f"resourceSpans[{i}].scopeSpans[{j}].spans[{k}]", span


def _check_id(field: str, value: bytes, size: int, required: bool = False) -> None:
    if len(value) == size or (not value and not required):
        return
    raise OtlpDecodeError(f"{field}: expected {size} bytes ({2 * size} hex digits), got {len(value)} bytes")


# --------------------------------------------------------------------------------------------------
# What every envelope shares: time, duration, tags from the resource, properties


_ENVELOPE_VERSION = 2
_DEFAULT_ROLE_INSTANCE_ATTRS = ("k8s.pod.name", "service.instance.id", "host.name")
_K8S_ROLE_ATTRS = ("k8s.deployment.name", "k8s.replicaset.name", "k8s.statefulset.name",
                   "k8s.job.name", "k8s.cronjob.name", "k8s.daemonset.name")
_CUSTOM_MEASUREMENTS = "microsoft.custom_measurements"
_SAMPLE_RATE = "_MS.sampleRate"
_GEN_AI_UNTRUNCATED = frozenset((
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.evaluation.explanation",
))


def _value(value: AnyValue) -> Any:
    """An AnyValue as the Python value the SDK held: arrays are tuples, maps are dicts."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return _attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def _attributes(key_values: Any) -> Attrs:
    return {kv.key: _value(kv.value) for kv in key_values}


def _time(unix_nano: int) -> str:
    """The exporter's timestamp: the float conversion and isoformat included, so both agree to the µs."""
    moment = datetime.fromtimestamp(unix_nano / 1e9, tz=timezone.utc)
    return moment.isoformat().replace("+00:00", "Z")


def _duration(nanoseconds: int) -> str:
    """`d.hh:mm:ss.ffffff`, rounded to the microsecond; never negative."""
    micros = (max(nanoseconds, 0) + 500) // 1000
    seconds, micros = divmod(micros, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}"


def _hex_id(raw: bytes, width: int) -> str:
    return format(int.from_bytes(raw, "big"), f"0{width}x")


def _resource_tags(resource: Attrs) -> dict[str, str]:
    """Part A tags of every envelope from one resource (`_utils._populate_part_a_fields`)."""
    tags = {"ai.device.type": "Other", "ai.internal.sdkVersion": _sdk_version(resource)}
    if resource.get("host.name"):
        tags["ai.device.id"] = str(resource["host.name"])
    if not resource:
        return tags
    tags["ai.cloud.role"] = _cloud_role(resource)
    instance = next((resource[k] for k in _DEFAULT_ROLE_INSTANCE_ATTRS if resource.get(k)), None)
    if instance is not None:
        tags["ai.cloud.roleInstance"] = tags["ai.internal.nodeName"] = str(instance)
    for attribute, tag in (("device.id", "ai.device.id"), ("device.model.name", "ai.device.model"),
                           ("device.manufacturer", "ai.device.oemName"),
                           ("service.version", "ai.application.ver")):
        if resource.get(attribute):
            tags[tag] = resource[attribute]
    return tags


def _sdk_version(resource: Attrs) -> str:
    language = resource.get("telemetry.sdk.language") or "unknown"
    version = resource.get("telemetry.sdk.version") or "unknown"
    return f"otlp:{language}:{version}"


def _cloud_role(resource: Attrs) -> str:
    """`service.namespace.service.name`; a k8s workload name beats an `unknown_service:*` name."""
    role = ""
    service = resource.get("service.name")
    if service:
        namespace = resource.get("service.namespace")
        role = f"{namespace}.{service}" if namespace else str(service)
        if not str(service).startswith("unknown_service"):
            return role
    return next((resource[k] for k in _K8S_ROLE_ATTRS if resource.get(k)), role)


def _properties(attributes: Attrs, keep: Callable[[str], bool] = lambda key: True) -> dict[str, str]:
    """Attributes as App Insights properties: strings, keys up to 150, values up to 8 KiB."""
    properties = {}
    for key, value in attributes.items():
        if not keep(key) or not key or len(key) > 150 or value is None:
            continue
        limit = 256 * 1024 if key in _GEN_AI_UNTRUNCATED else 8 * 1024
        properties[key] = str(value)[:limit]
    return properties


def _measurements(attributes: Attrs) -> dict[str, float]:
    """Numbers of the `microsoft.custom_measurements` attribute (a mapping or its JSON)."""
    value = attributes.get(_CUSTOM_MEASUREMENTS)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            return {}
    if not isinstance(value, Mapping):
        return {}
    measurements = {}
    for key, number in value.items():
        if not key or not isinstance(key, str) or isinstance(number, bool):
            continue
        if not isinstance(number, (int, float)):
            continue
        try:
            number = float(number)
        except OverflowError:
            continue
        if math.isfinite(number):
            measurements[key[:150]] = number
    return measurements


def _is_synthetic(attributes: Attrs) -> bool:
    if attributes.get("user_agent.synthetic.type") in ("bot", "test"):
        return True
    agent = attributes.get("user_agent.original") or attributes.get("http.user_agent")
    return isinstance(agent, str) and "AlwaysOn" in agent


def _user_tags(attributes: Attrs, tags: dict[str, Any]) -> None:
    if "enduser.id" in attributes:
        tags["ai.user.authUserId"] = attributes["enduser.id"]
    if "enduser.pseudo.id" in attributes:
        tags["ai.user.id"] = attributes["enduser.pseudo.id"]
    if _is_synthetic(attributes):
        tags["ai.operation.syntheticSource"] = "True"


def _envelope(kind: str, ikey: str, unix_nano: int, tags: dict[str, Any], base_data: dict) -> Envelope:
    """Tags are strings in App Insights; an attribute of another type under a semantic key is rendered."""
    return {
        "name": f"Microsoft.ApplicationInsights.{kind}",
        "iKey": ikey,
        "time": _time(unix_nano),
        "tags": {key: value if isinstance(value, str) else str(value) for key, value in tags.items()},
        "data": {"baseType": f"{kind}Data", "baseData": base_data},
    }


def _status_code(attributes: Attrs) -> int:
    """`http.response.status_code` (or the old `http.status_code`) as an int, 0 when absent or bad."""
    code = attributes.get("http.response.status_code") or attributes.get("http.status_code")
    if not code:
        return 0
    try:
        return int(code)
    except (TypeError, ValueError, OverflowError):
        return 0


def _http_method(attributes: Attrs) -> Any:
    return attributes.get("http.request.method") or attributes.get("http.method")


def _is_http(attributes: Attrs) -> bool:
    return "http.request.method" in attributes or "http.method" in attributes


# --------------------------------------------------------------------------------------------------
# Traces: spans -> Request / RemoteDependency, span events -> Exception / Message


_STANDARD_PREFIXES = ("http.", "db.", "message.", "messaging.", "rpc.", "enduser.", "net.", "peer.",
                      "exception.", "thread.", "fass.", "code.")
_STANDARD_ATTRIBUTES = frozenset((
    "session.id", _SAMPLE_RATE, _CUSTOM_MEASUREMENTS,
    "client.address", "client.port", "server.address", "server.port", "url.full", "url.path",
    "url.query", "url.scheme", "url.template", "error.type", "network.local.address",
    "network.local.port", "network.protocol.name", "network.peer.address", "network.peer.port",
    "network.protocol.version", "network.transport", "user_agent.original", "user_agent.synthetic.type",
))
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
_DB_TYPES = {"mysql": "mysql", "postgresql": "postgresql", "mongodb": "mongodb", "redis": "redis"}
_SQL_SYSTEMS = frozenset(("db2", "ibm.db2", "derby", "mariadb", "mssql", "microsoft.sql_server", "oracle",
                          "oracle.db", "sqlite", "other_sql", "hsqldb", "h2", "h2database"))
_DB_DEFAULT_PORTS = {"postgresql": 5432, "cassandra": 9042, "mariadb": 3306, "mysql": 3306, "mssql": 1433,
                     "microsoft.sql_server": 1433, "memcached": 11211, "db2": 50000, "ibm.db2": 50000,
                     "oracle": 1521, "oracle.db": 1521, "h2": 8082, "h2database": 8082, "derby": 1527,
                     "redis": 6379}
_AZ_NAMESPACE = "az.namespace"
_GEN_AI_SYSTEM = "gen_ai.system"


def traces_to_envelopes(request: ExportTraceServiceRequest, ikey: str) -> list[Envelope]:
    """One envelope per span, followed by one per span event, as the trace exporter sends them.

    The `_OTELRESOURCE_` metric the Azure exporter adds to every batch is not produced: it is SDK
    self-telemetry that the collector keeps out of `customMetrics` anyway.
    """
    envelopes = []
    for resource_spans in request.resource_spans:
        resource_tags = _resource_tags(_attributes(resource_spans.resource.attributes))
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                attributes = _attributes(span.attributes)
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
    envelope = _envelope(kind, ikey, span.start_time_unix_nano, tags, data)
    _sample_rate(envelope, attributes)
    return envelope


def _sample_rate(envelope: Envelope, span_attributes: Attrs) -> None:
    rate = span_attributes.get(_SAMPLE_RATE)
    if isinstance(rate, (int, float)) and not isinstance(rate, bool):
        envelope["sampleRate"] = rate


def _span_tags(span: Span, attributes: Attrs, resource_tags: dict) -> dict[str, Any]:
    tags = dict(resource_tags)
    tags["ai.operation.id"] = _hex_id(span.trace_id, 32)
    _user_tags(attributes, tags)
    if int.from_bytes(span.parent_span_id, "big"):
        tags["ai.operation.parentId"] = _hex_id(span.parent_span_id, 16)
    if isinstance(attributes.get("session.id"), str):
        tags["ai.session.id"] = attributes["session.id"]
    return tags


def _span_duration(span: Span) -> str:
    if not (span.start_time_unix_nano and span.end_time_unix_nano):
        return _duration(0)
    return _duration(span.end_time_unix_nano - span.start_time_unix_nano)


def _is_ok(span: Span) -> bool:
    return span.status.code != Status.STATUS_CODE_ERROR


def _span_properties(span: Span, attributes: Attrs, scope: str) -> dict[str, str]:
    properties = _properties(attributes, lambda key: not _is_standard_attribute(key))
    if scope in _METRIC_EXTRACTING_SCOPES:
        properties["_MS.ProcessedByMetricExtractors"] = "True"
    if span.links:
        links = [{"operation_Id": _hex_id(link.trace_id, 32), "id": _hex_id(link.span_id, 16)}
                 for link in span.links[:103]]
        properties["_MS.links"] = json.dumps(links)
    return properties


def _is_standard_attribute(key: str) -> bool:
    return key.startswith(_STANDARD_PREFIXES) or key in _STANDARD_ATTRIBUTES


# Requests


def _request_data(span: Span, attributes: Attrs, tags: dict) -> dict[str, Any]:
    data: dict[str, Any] = {
        "ver": _ENVELOPE_VERSION, "name": span.name, "id": _hex_id(span.span_id, 16),
        "duration": _span_duration(span), "responseCode": "0", "success": _is_ok(span),
        "properties": {}, "measurements": _measurements(attributes),
    }
    tags["ai.operation.name"] = span.name
    location_ip = _location_ip(attributes)
    if location_ip:
        tags["ai.location.ip"] = location_ip
    if _AZ_NAMESPACE in attributes:
        _azure_sdk_request(span, attributes, data)
    elif _is_http(attributes):
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


def _location_ip(attributes: Attrs) -> Any:
    return attributes.get("client.address") or attributes.get("http.client_ip") or attributes.get("net.peer.ip")


def _azure_sdk_request(span: Span, attributes: Attrs, data: dict) -> None:
    """Event Hubs / Service Bus consumer spans: source, and time since the linked messages were enqueued."""
    source = _azure_sdk_target(attributes)
    if source is not None:
        data["source"] = source
    if span.links:
        total = 0.0
        for link in span.links:
            enqueued = _attributes(link.attributes).get("enqueuedTime")
            if isinstance(enqueued, int):
                total += span.start_time_unix_nano / 1000000 - enqueued
        data["measurements"]["timeSinceEnqueued"] = max(0, total / len(span.links))


def _azure_sdk_target(attributes: Attrs) -> str | None:
    peer = attributes.get("server.address") or attributes.get("net.peer.name") or attributes.get("peer.address")
    destination = attributes.get("messaging.destination.name") or attributes.get("message_bus.destination")
    if peer and destination:
        return f"{peer}/{destination}"
    return None


def _http_request(span: Span, attributes: Attrs, data: dict, tags: dict) -> None:
    user_agent = attributes.get("user_agent.original") or attributes.get("http.user_agent")
    if user_agent:
        tags["ai.user.userAgent"] = user_agent
    url = _request_url(attributes)
    data["url"] = url
    if "http.route" in attributes:
        tags["ai.operation.name"] = f"{_http_method(attributes)} {attributes['http.route']}"
    elif url:
        try:
            tags["ai.operation.name"] = f"{_http_method(attributes)} {urlparse(url).path or '/'}"
        except (ValueError, TypeError, AttributeError):
            pass
    status_code = _status_code(attributes)
    data["responseCode"] = str(status_code)
    data["success"] = _is_ok(span) and status_code != 0 and status_code not in range(400, 500)


def _request_url(attributes: Attrs) -> Any:
    """The request URL: `url.full`/`http.url`, else rebuilt from scheme, host and target."""
    if "url.full" in attributes:
        return attributes["url.full"]
    if "http.url" in attributes:
        return attributes["http.url"]
    scheme = _http_scheme(attributes)
    target: Any = ""
    if "url.path" in attributes:
        target = attributes.get("url.path", "")
        if target and "url.query" in attributes:
            target = f"{target}?{attributes.get('url.query', '')}"
    elif "http.target" in attributes:
        target = attributes.get("http.target")
    if not (scheme and target):
        return ""
    host: Any = ""
    if "server.address" in attributes:
        host = attributes.get("server.address", "")
        if host and "server.port" in attributes:
            host = f"{host}:{attributes.get('server.port', '')}"
    elif "http.host" in attributes:
        host = attributes.get("http.host", "")
    if host:
        return f"{scheme}://{host}{target}"
    for name_attribute in ("http.server_name", "net.host.name"):
        if name_attribute in attributes:
            return f"{scheme}://{attributes[name_attribute]}:{attributes.get('net.host.port', '')}{target}"
    return ""


def _http_scheme(attributes: Attrs) -> str | None:
    scheme = attributes.get("url.scheme") or attributes.get("http.scheme")
    return str(scheme) if scheme else None


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
        "ver": _ENVELOPE_VERSION, "name": span.name, "id": _hex_id(span.span_id, 16), "resultCode": "0",
        "duration": _span_duration(span), "success": _is_ok(span),  # status alone decides, as in the exporter
        "properties": {}, "measurements": _measurements(attributes),
    }
    tags["ai.operation.name"] = span.name
    target = _peer_target(attributes)
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
    if _GEN_AI_SYSTEM in attributes:
        return f"GenAI | {attributes[_GEN_AI_SYSTEM]}"
    if _AZ_NAMESPACE in attributes:
        return f"InProc | {attributes[_AZ_NAMESPACE]}"
    return "InProc"


def _producer_dependency(attributes: Attrs, data: dict, target: Any) -> Any:
    if _AZ_NAMESPACE in attributes:
        data["type"] = f"Queue Message | {attributes[_AZ_NAMESPACE]}"
        return _azure_sdk_target(attributes)
    data["type"] = "Queue Message"
    if attributes.get("messaging.system"):
        data["type"] += f" | {attributes['messaging.system']}"
    return _messaging_target(attributes, target)


def _client_dependency(attributes: Attrs, data: dict, tags: dict, target: Any) -> Any:
    """Type, data and target of a CLIENT span by its semantic attributes; GenAI wins the type."""
    gen_ai = attributes.get(_GEN_AI_SYSTEM, "")
    if _AZ_NAMESPACE in attributes:
        data["type"] = attributes[_AZ_NAMESPACE]
        azure_target = _azure_sdk_target(attributes)
        if azure_target is not None:
            data["target"] = azure_target
    elif _is_http(attributes):
        target = _http_dependency(attributes, data, tags)
    elif "db.system.name" in attributes or "db.system" in attributes:
        target = _db_dependency(attributes, data, target)
    elif "messaging.system" in attributes:
        data["type"] = attributes["messaging.system"]
        target = _messaging_target(attributes, target)
    elif "rpc.system" in attributes:
        data["type"] = "rpc.system"  # sic: the exporter sends the attribute's name, not its value
        if not target and attributes.get("rpc.system"):
            target = str(attributes["rpc.system"])
    elif _GEN_AI_SYSTEM in attributes:
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
    url = _dependency_url(attributes)
    method = _http_method(attributes)
    if "http.route" in attributes:
        tags["ai.operation.name"] = f"{method} {attributes['http.route']}"
    if url:
        data["data"] = url
    target, path = _http_target_and_path(attributes, url)
    if path:
        data["name"] = tags["ai.operation.name"] = f"{method} {path}"
    data["resultCode"] = str(_status_code(attributes))
    return target


def _dependency_url(attributes: Attrs) -> Any:
    if "url.full" in attributes:
        return attributes["url.full"]
    if "http.url" in attributes:
        return attributes["http.url"]
    scheme = _http_scheme(attributes)
    if not (scheme and "http.target" in attributes):
        return ""
    target = attributes["http.target"]
    if "http.host" in attributes:
        return f"{scheme}://{attributes['http.host']}{target}"
    if "net.peer.port" in attributes:
        for host_attribute in ("net.peer.name", "net.peer.ip"):
            if host_attribute in attributes:
                return f"{scheme}://{attributes[host_attribute]}:{attributes['net.peer.port']}{target}"
    return ""


def _default_http_port(attributes: Attrs) -> int:
    return {"http": 80, "https": 443}.get(_http_scheme(attributes) or "", 0)


def _http_target_and_path(attributes: Attrs, url: Any) -> tuple[Any, str]:
    """`host[:port]` (port only when not the scheme's default) and the URL path of an HTTP call."""
    default_port = _default_http_port(attributes)
    parsed = None
    path = "/"
    try:
        parsed = urlparse(url or _dependency_url(attributes))
        path = parsed.path or path
    except (ValueError, TypeError, AttributeError):
        pass
    target: Any = ""
    if "server.address" in attributes:
        target = attributes["server.address"]
        port = attributes.get("server.port")
        if port != default_port:
            target = f"{target}:{port}"
    elif "peer.service" in attributes:
        target = attributes["peer.service"]
    elif "http.host" in attributes:
        target = _target_from_host(attributes["http.host"], default_port)
    elif parsed:
        target = _target_from_url(parsed, default_port)
    return target or _peer_target(attributes), path


def _target_from_host(host: Any, default_port: int) -> Any:
    try:
        parsed = urlparse("//" + str(host))
        return parsed.hostname if parsed.port == default_port else str(host)
    except ValueError:
        return ""


def _target_from_url(parsed: Any, default_port: int) -> Any:
    try:
        port = parsed.port
    except ValueError:
        port = None
    if port and port == default_port:
        return parsed.hostname or ""
    return parsed.netloc or ""


def _peer_target(attributes: Attrs) -> Any:
    """Target from `peer.service`, else `net.peer.name|ip[:port]` (port only when not a default)."""
    if "peer.service" in attributes:
        return attributes["peer.service"]
    target: Any = ""
    if "net.peer.name" in attributes:
        target = attributes["net.peer.name"]
    elif "net.peer.ip" in attributes:
        target = attributes["net.peer.ip"]
    if "net.peer.port" in attributes:
        port = attributes["net.peer.port"]
        db_system = attributes.get("db.system.name") or attributes.get("db.system")
        if port != _default_http_port(attributes) and port != _DB_DEFAULT_PORTS.get(str(db_system), 0):
            target = f"{target}:{port}"
    return target


def _db_dependency(attributes: Attrs, data: dict, target: Any) -> Any:
    db_system = attributes.get("db.system.name") or attributes.get("db.system")
    if isinstance(db_system, str) and db_system in _DB_TYPES:
        data["type"] = _DB_TYPES[db_system]
    elif str(db_system) in _SQL_SYSTEMS:
        data["type"] = "SQL"
    else:
        data["type"] = db_system
    for statement in ("db.query.text", "db.statement", "db.operation.name", "db.operation"):
        if statement in attributes:
            data["data"] = attributes[statement]
            break
    return _db_target(target, db_system, attributes)


def _db_target(target: Any, db_system: Any, attributes: Attrs) -> Any:
    """`server[:port]|database`, falling back to the database name, then the system."""
    if not target and attributes.get("server.address"):
        target = str(attributes["server.address"])
        port = attributes.get("server.port")
        if port and port != _DB_DEFAULT_PORTS.get(str(db_system), 0):
            target = f"{target}:{port}"
    db_name = attributes.get("db.namespace") or attributes.get("db.name")
    if db_name:
        return f"{target}|{db_name}" if target else str(db_name)
    return target or db_system


def _messaging_target(attributes: Attrs, target: Any) -> Any:
    if target:
        return target
    for attribute in ("messaging.destination", "messaging.system"):
        if attribute in attributes:
            return str(attributes[attribute])
    return target


# Span events


def _span_event_envelopes(span: Span, span_attributes: Attrs, resource_tags: dict, ikey: str) -> list[Envelope]:
    """An `exception` event becomes ExceptionData (with the `stack` string), any other MessageData."""
    envelopes = []
    for event in span.events:
        attributes = _attributes(event.attributes)
        tags = _span_event_tags(span, span_attributes, attributes, resource_tags)
        properties = _properties(attributes, lambda key: not _is_standard_attribute(key))
        measurements = _measurements(attributes)
        if event.name == "exception":
            kind, data = "Exception", _exception_data(attributes, properties, measurements)
        else:
            kind = "Message"
            data = {"ver": _ENVELOPE_VERSION, "message": str(event.name)[:32768],
                    "properties": properties, "measurements": measurements}
        envelope = _envelope(kind, ikey, event.time_unix_nano, tags, data)
        _sample_rate(envelope, span_attributes)
        envelopes.append(envelope)
    return envelopes


def _span_event_tags(span: Span, span_attributes: Attrs, attributes: Attrs, resource_tags: dict) -> dict:
    tags = dict(resource_tags)
    tags["ai.operation.id"] = _hex_id(span.trace_id, 32)
    session_id = attributes.get("session.id")
    if not isinstance(session_id, str):
        session_id = span_attributes.get("session.id")
    if isinstance(session_id, str):
        tags["ai.session.id"] = session_id
    if int.from_bytes(span.span_id, "big"):
        tags["ai.operation.parentId"] = _hex_id(span.span_id, 16)
    return tags


def _exception_data(attributes: Attrs, properties: dict, measurements: dict, message: Any = None,
                    severity_level: int | None = None) -> dict[str, Any]:
    """ExceptionData with one exception carrying the raw `stack` string (no `parsedStack`)."""
    stack = attributes.get("exception.stacktrace")
    details = {
        "typeName": str(attributes.get("exception.type") or "Exception")[:1024],
        "message": str(message or attributes.get("exception.message") or "Exception")[:32768],
        "hasFullStack": stack is not None,
        "stack": str(stack)[:32768],
    }
    data: dict[str, Any] = {"ver": _ENVELOPE_VERSION}
    if severity_level is not None:
        data["severityLevel"] = severity_level
    data.update({"properties": properties, "measurements": measurements, "exceptions": [details]})
    return data


# --------------------------------------------------------------------------------------------------
# Logs: records -> Message / Exception / Event / Availability


_EVENT_NAME = "microsoft.custom_event.name"
_EVENT_MARKER = "APPLICATION_INSIGHTS_EVENT_MARKER_ATTRIBUTE"
_AVAILABILITY = {"id": "microsoft.availability.id", "name": "microsoft.availability.name",
                 "duration": "microsoft.availability.duration", "success": "microsoft.availability.success",
                 "run_location": "microsoft.availability.runLocation",
                 "message": "microsoft.availability.message"}
_LOG_IGNORED_ATTRIBUTES = frozenset((
    "exception.type", "exception.message", "exception.stacktrace", "exception.escaped",
    _EVENT_MARKER, _EVENT_NAME, _CUSTOM_MEASUREMENTS, *_AVAILABILITY.values(),
    "enduser.id", "enduser.pseudo.id", "session.id",
))
_EMPTY_MESSAGE = "n/a"


def logs_to_envelopes(request: ExportLogsServiceRequest, ikey: str) -> list[Envelope]:
    """One envelope per log record, as the log exporter sends them."""
    envelopes = []
    for resource_logs in request.resource_logs:
        resource_tags = _resource_tags(_attributes(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            logger_name = scope_logs.scope.name if scope_logs.HasField("scope") else None
            for record in scope_logs.log_records:
                envelopes.append(_log_envelope(record, logger_name, resource_tags, ikey))
    return envelopes


def _log_envelope(record: Any, logger_name: str | None, resource_tags: dict, ikey: str) -> Envelope:
    attributes = _attributes(record.attributes)
    tags = _log_tags(record, attributes, resource_tags)
    properties = _properties(attributes, lambda key: key not in _LOG_IGNORED_ATTRIBUTES)
    if logger_name is not None:
        properties.setdefault("logger_name", logger_name)
    measurements = _measurements(attributes)
    body = _value(record.body) if record.HasField("body") else None
    severity_level = _severity_level(record.severity_number)
    availability = _availability(attributes)
    if attributes.get("exception.type") is not None or attributes.get("exception.message") is not None:
        message = _body_to_message(body) if body else None
        kind, data = "Exception", _exception_data(attributes, properties, measurements, message, severity_level)
    elif (attributes.get(_EVENT_NAME) or attributes.get(_EVENT_MARKER)) is not None:
        name = str(attributes[_EVENT_NAME]) if attributes.get(_EVENT_NAME) else _body_to_message(body)
        kind = "Event"
        data = {"ver": _ENVELOPE_VERSION, "name": name, "properties": properties, "measurements": measurements}
    elif availability:
        kind, data = "Availability", _availability_data(availability, body, properties, measurements)
    else:
        kind = "Message"
        data = {"ver": _ENVELOPE_VERSION, "message": _body_to_message(body).strip() or _EMPTY_MESSAGE,
                "severityLevel": severity_level, "properties": properties, "measurements": measurements}
    return _envelope(kind, ikey, record.time_unix_nano or record.observed_time_unix_nano, tags, data)


def _log_tags(record: Any, attributes: Attrs, resource_tags: dict) -> dict[str, Any]:
    """Outside a span the operation ids are all zeros, as the exporter sends them."""
    tags = dict(resource_tags)
    tags["ai.operation.id"] = _hex_id(record.trace_id, 32)
    tags["ai.operation.parentId"] = _hex_id(record.span_id, 16)
    if attributes.get("ai.operation.name") is not None:
        tags["ai.operation.name"] = attributes["ai.operation.name"]
    if isinstance(attributes.get("session.id"), str):
        tags["ai.session.id"] = attributes["session.id"]
    _user_tags(attributes, tags)
    location_ip = _location_ip(attributes)
    if location_ip:
        tags["ai.location.ip"] = location_ip
    return tags


def _severity_level(severity_number: int) -> int:
    """OTel severity 1-24 to App Insights 0-4: TRACE/DEBUG 0, INFO 1, WARN 2, ERROR 3, FATAL 4."""
    if severity_number < 9:
        return 0
    return int((severity_number - 1) / 4 - 1)


def _body_to_message(body: Any) -> str:
    """A string body as is; any other body as JSON, the way the exporter renders it."""
    if not body:
        return ""
    if isinstance(body, str):
        return body[:32768]
    try:
        return json.dumps(body)[:32768]
    except (TypeError, ValueError):
        return str(body)[:32768]


def _availability(attributes: Attrs) -> dict[str, str] | None:
    if _AVAILABILITY["name"] not in attributes:
        return None
    values = {field: attributes.get(attribute) for field, attribute in _AVAILABILITY.items()}
    if not all(values[f] is not None and str(values[f]) for f in ("id", "name", "duration", "success")):
        return None
    return {field: str(value) for field, value in values.items() if value is not None}


def _availability_data(values: dict, body: Any, properties: dict, measurements: dict) -> dict[str, Any]:
    data = {"ver": _ENVELOPE_VERSION, "id": values["id"], "name": values["name"],
            "duration": values["duration"], "success": values["success"].lower() == "true"}
    if "run_location" in values:
        data["runLocation"] = values["run_location"]
    data["message"] = values["message"] if "message" in values else _body_to_message(body)
    data.update({"properties": properties, "measurements": measurements})
    return data


# --------------------------------------------------------------------------------------------------
# Metrics: every data point -> MetricData


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
        resource_tags = _resource_tags(_attributes(resource_metrics.resource.attributes))
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
    attributes = _attributes(point.attributes)
    tags = dict(resource_tags)
    if _is_synthetic(attributes):
        tags["ai.operation.syntheticSource"] = "True"
    if name in _AUTOCOLLECTED_METRICS:
        properties = _standard_metric_properties(name, attributes, tags)
        if properties is None:
            return None
    else:
        properties = _properties(attributes)
    metric_name = _PERFORMANCE_COUNTER_NAMES.get(name, name)
    data = {"ver": _ENVELOPE_VERSION, "properties": properties,
            "metrics": [{"name": str(metric_name)[:1024], **value}]}
    return _envelope("Metric", ikey, point.time_unix_nano, tags, data)


def _standard_metric_properties(name: str, attributes: Attrs, tags: dict) -> dict[str, str] | None:
    """The properties App Insights standard metrics carry, for the HTTP duration instruments."""
    status_code = _status_code(attributes)
    success = str(status_code != 0 and status_code < 400)
    role = {"cloud/roleInstance": str(tags.get("ai.cloud.roleInstance", "")),
            "cloud/roleName": str(tags.get("ai.cloud.role", ""))}
    if name in _HTTP_CLIENT_DURATIONS:
        target, _ = _http_target_and_path(attributes, "")
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


CONVERTERS = {"traces": traces_to_envelopes, "logs": logs_to_envelopes, "metrics": metrics_to_envelopes}
