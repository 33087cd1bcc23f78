"""Logs: records -> Message / Exception / Event / Availability."""

from __future__ import annotations

import json
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from collector.ingest.otlp import common, semconv
from collector.ingest.otlp.common import Envelope
from collector.ingest.otlp.semconv import Attrs

_EVENT_NAME = "microsoft.custom_event.name"
_EVENT_MARKER = "APPLICATION_INSIGHTS_EVENT_MARKER_ATTRIBUTE"
_AVAILABILITY = {"id": "microsoft.availability.id", "name": "microsoft.availability.name",
                 "duration": "microsoft.availability.duration", "success": "microsoft.availability.success",
                 "run_location": "microsoft.availability.runLocation",
                 "message": "microsoft.availability.message"}
_LOG_IGNORED_ATTRIBUTES = frozenset((
    "exception.type", "exception.message", "exception.stacktrace", "exception.escaped",
    _EVENT_MARKER, _EVENT_NAME, semconv.CUSTOM_MEASUREMENTS, *_AVAILABILITY.values(),
    "enduser.id", "enduser.pseudo.id", "session.id",
))
_EMPTY_MESSAGE = "n/a"


def logs_to_envelopes(request: ExportLogsServiceRequest, ikey: str) -> list[Envelope]:
    """One envelope per log record, as the log exporter sends them."""
    envelopes = []
    for resource_logs in request.resource_logs:
        resource_tags = common.resource_tags(common.attributes(resource_logs.resource.attributes))
        for scope_logs in resource_logs.scope_logs:
            logger_name = scope_logs.scope.name if scope_logs.HasField("scope") else None
            for record in scope_logs.log_records:
                envelopes.append(_log_envelope(record, logger_name, resource_tags, ikey))
    return envelopes


def _log_envelope(record: Any, logger_name: str | None, resource_tags: dict, ikey: str) -> Envelope:
    attributes = common.attributes(record.attributes)
    tags = _log_tags(record, attributes, resource_tags)
    properties = common.properties(attributes, lambda key: key not in _LOG_IGNORED_ATTRIBUTES)
    if logger_name is not None:
        properties.setdefault("logger_name", logger_name)
    measurements = common.measurements(attributes)
    body = common.python_value(record.body) if record.HasField("body") else None
    severity_level = _severity_level(record.severity_number)
    availability = _availability(attributes)
    if attributes.get("exception.type") is not None or attributes.get("exception.message") is not None:
        message = _body_to_message(body) if body else None
        kind, data = "Exception", common.exception_data(attributes, properties, measurements, message, severity_level)
    elif (attributes.get(_EVENT_NAME) or attributes.get(_EVENT_MARKER)) is not None:
        name = str(attributes[_EVENT_NAME]) if attributes.get(_EVENT_NAME) else _body_to_message(body)
        kind = "Event"
        data = {"ver": common.ENVELOPE_VERSION, "name": name, "properties": properties, "measurements": measurements}
    elif availability:
        kind, data = "Availability", _availability_data(availability, body, properties, measurements)
    else:
        kind = "Message"
        data = {"ver": common.ENVELOPE_VERSION, "message": _body_to_message(body).strip() or _EMPTY_MESSAGE,
                "severityLevel": severity_level, "properties": properties, "measurements": measurements}
    return common.envelope(kind, ikey, record.time_unix_nano or record.observed_time_unix_nano, tags, data)


def _log_tags(record: Any, attributes: Attrs, resource_tags: dict) -> dict[str, Any]:
    """Outside a span the operation ids are all zeros, as the exporter sends them."""
    tags = dict(resource_tags)
    tags["ai.operation.id"] = common.hex_id(record.trace_id, 32)
    tags["ai.operation.parentId"] = common.hex_id(record.span_id, 16)
    if attributes.get("ai.operation.name") is not None:
        tags["ai.operation.name"] = attributes["ai.operation.name"]
    if isinstance(attributes.get("session.id"), str):
        tags["ai.session.id"] = attributes["session.id"]
    common.user_tags(attributes, tags)
    location_ip = semconv.location_ip(attributes)
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
    data = {"ver": common.ENVELOPE_VERSION, "id": values["id"], "name": values["name"],
            "duration": values["duration"], "success": values["success"].lower() == "true"}
    if "run_location" in values:
        data["runLocation"] = values["run_location"]
    data["message"] = values["message"] if "message" in values else _body_to_message(body)
    data.update({"properties": properties, "measurements": measurements})
    return data
