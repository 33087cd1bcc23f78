"""Decoding OTLP/HTTP bodies (protobuf or JSON) into Export*ServiceRequest messages, and the responses."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator

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
from opentelemetry.proto.trace.v1.trace_pb2 import Span


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
