"""App Insights envelopes (the track protocol, reference/appinsights-protocol.md sections 1 and 7).

Each builder returns one serialised envelope line (bytes), so that the expensive part of telemetry
(JSON encoding) happens once, in the thread that captured the item, and what waits in the queue and
on disk is already what goes on the wire. Timestamps are the start of the thing measured; durations
are real (unlike azmlinfsrv's, which are always zero).
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

SDK_VERSION = "py3:insights-scoring:0.1.0"

_DUMPS_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


@dataclass(frozen=True)
class Operation:
    """What links an item to its request: the trace (operation_Id) and the parent span."""

    operation_id: str
    parent_id: str | None = None
    name: str | None = None
    request_id: str | None = None


class Identity:
    """The fixed part of every envelope: iKey, role, instance, SDK version, common properties."""

    def __init__(self, ikey: str, service_name: str, workspace_name: str, container_id: str):
        self.ikey = ikey
        self.base_tags = {
            "ai.cloud.role": service_name,
            "ai.cloud.roleInstance": container_id,
            "ai.internal.sdkVersion": SDK_VERSION,
        }
        self.base_properties = {
            "Container Id": container_id,
            "Service Name": service_name,
            "Workspace Name": workspace_name,
        }

    def envelope(self, kind: str, base_type: str, base: dict, time_s: float, operation: Operation | None) -> bytes:
        tags = dict(self.base_tags)
        if operation is not None:
            tags["ai.operation.id"] = operation.operation_id
            if operation.parent_id:
                tags["ai.operation.parentId"] = operation.parent_id
            if operation.name:
                tags["ai.operation.name"] = operation.name
        item = {
            "iKey": self.ikey,
            "time": iso_time(time_s),
            "name": f"Microsoft.ApplicationInsights.{kind}",
            "tags": tags,
            "data": {"baseType": base_type, "baseData": base},
        }
        return dumps(item)

    def properties(self, operation: Operation | None, extra: dict | None = None) -> dict:
        properties = dict(self.base_properties)
        if operation is not None and operation.request_id:
            properties["Request Id"] = operation.request_id
        if extra:
            properties.update(extra)
        return properties


def dumps(item: object) -> bytes:
    try:
        return orjson.dumps(item, option=_DUMPS_OPTIONS, default=str)
    except TypeError:  # e.g. an int beyond 64 bits inside a printed object
        return orjson.dumps(_stringify(item), option=_DUMPS_OPTIONS)


def _stringify(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _stringify(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_stringify(v) for v in value]
    if isinstance(value, (str, float, bool)) or value is None:
        return value
    return str(value)


def iso_time(time_s: float) -> str:
    return datetime.fromtimestamp(time_s, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def duration_text(seconds: float) -> str:
    """'d.hh:mm:ss.ffffff', the form RequestData and RemoteDependencyData carry."""
    micros = max(0, round(seconds * 1_000_000))
    whole, fraction = divmod(micros, 1_000_000)
    minutes, secs = divmod(whole, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}.{hours:02d}:{minutes:02d}:{secs:02d}.{fraction:06d}"


def request(identity: Identity, operation: Operation, *, span_id: str, name: str, url: str, status: int,
            start_s: float, duration_s: float, properties: dict) -> bytes:
    base = {
        "ver": 2,
        "id": span_id,
        "name": name,
        "duration": duration_text(duration_s),
        "responseCode": str(status),
        "success": status < 400,
        "url": url,
        "properties": properties,
    }
    return identity.envelope("Request", "RequestData", base, start_s, operation)


def message(identity: Identity, operation: Operation | None, text: str, severity: int, time_s: float, properties: dict) -> bytes:
    base = {"ver": 2, "message": text, "severityLevel": severity, "properties": properties}
    return identity.envelope("Message", "MessageData", base, time_s, operation)


def exception(identity: Identity, operation: Operation | None, error: BaseException, time_s: float,
              properties: dict, severity: int = 3, frames: list | None = None) -> bytes:
    """The user's own exception type and message, with its cause/context chain, outermost first."""
    base = {
        "ver": 2,
        "exceptions": exception_chain(error, frames),
        "severityLevel": severity,
        "properties": properties,
    }
    return identity.envelope("Exception", "ExceptionData", base, time_s, operation)


def exception_chain(error: BaseException, frames: list | None = None) -> list[dict]:
    chain, seen, current = [], set(), error
    while current is not None and id(current) not in seen and len(chain) < 10:
        seen.add(id(current))
        stack = frames if (frames is not None and current is error) else traceback.extract_tb(current.__traceback__)
        chain.append({
            "id": len(chain) + 1,
            "outerId": len(chain),
            "typeName": type(current).__qualname__,
            "message": str(current),
            "hasFullStack": True,
            "parsedStack": parsed_stack(stack),
        })
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
    return chain


def parsed_stack(frames) -> list[dict]:
    """Frames innermost first (level 0 is where it was raised), as App Insights orders them."""
    out = []
    for level, frame in enumerate(list(reversed(list(frames)))[:100]):
        out.append({"level": level, "method": frame.name, "fileName": frame.filename, "line": frame.lineno,
                    "assembly": _module_of(frame.filename)})
    return out


def _module_of(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1]
    return name[:-3] if name.endswith(".py") else name


def dependency(identity: Identity, operation: Operation, *, span_id: str, name: str, data: str | None,
               target: str | None, kind: str, result_code: str, success: bool, start_s: float,
               duration_s: float, properties: dict) -> bytes:
    base = {
        "ver": 2,
        "id": span_id,
        "name": name,
        "data": data,
        "target": target,
        "type": kind,
        "resultCode": result_code,
        "success": success,
        "duration": duration_text(duration_s),
        "properties": properties,
    }
    return identity.envelope("RemoteDependency", "RemoteDependencyData", base, start_s, operation)


def metric(identity: Identity, name: str, value: float, time_s: float, properties: dict,
           operation: Operation | None = None) -> bytes:
    """`operation` links the metric to an operation (a batch job's progress lives under the job's)."""
    base = {"ver": 2, "metrics": [{"name": name, "value": value, "count": 1}], "properties": properties}
    return identity.envelope("Metric", "MetricData", base, time_s, operation)
