"""What every envelope shares: time, duration, tags from the resource, properties."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from collector.ingest.otlp import semconv
from collector.ingest.otlp.semconv import Attrs

Envelope = dict[str, Any]


ENVELOPE_VERSION = 2
_DEFAULT_ROLE_INSTANCE_ATTRS = ("k8s.pod.name", "service.instance.id", "host.name")
_K8S_ROLE_ATTRS = ("k8s.deployment.name", "k8s.replicaset.name", "k8s.statefulset.name",
                   "k8s.job.name", "k8s.cronjob.name", "k8s.daemonset.name")


_GEN_AI_UNTRUNCATED = frozenset((
    "gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions",
    "gen_ai.tool.definitions", "gen_ai.tool.call.arguments", "gen_ai.tool.call.result",
    "gen_ai.evaluation.explanation",
))


def python_value(value: AnyValue) -> Any:
    """An AnyValue as the Python value the SDK held: arrays are tuples, maps are dicts."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return tuple(python_value(v) for v in value.array_value.values)
    if kind == "kvlist_value":
        return attributes(value.kvlist_value.values)
    return getattr(value, kind) if kind else None


def attributes(key_values: Any) -> Attrs:
    return {kv.key: python_value(kv.value) for kv in key_values}


def _time(unix_nano: int) -> str:
    """The exporter's timestamp: the float conversion and isoformat included, so both agree to the µs."""
    moment = datetime.fromtimestamp(unix_nano / 1e9, tz=UTC)
    return moment.isoformat().replace("+00:00", "Z")


def duration(nanoseconds: int) -> str:
    """`d.hh:mm:ss.ffffff`, rounded to the microsecond; never negative."""
    micros = (max(nanoseconds, 0) + 500) // 1000
    seconds, micros = divmod(micros, 1_000_000)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    return f"{days}.{hours:02d}:{minutes:02d}:{seconds:02d}.{micros:06d}"


def hex_id(raw: bytes, width: int) -> str:
    return format(int.from_bytes(raw, "big"), f"0{width}x")


def resource_tags(resource: Attrs) -> dict[str, str]:
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


def properties(attributes: Attrs, keep: Callable[[str], bool] = lambda key: True) -> dict[str, str]:
    """Attributes as App Insights properties: strings, keys up to 150, values up to 8 KiB."""
    properties = {}
    for key, value in attributes.items():
        if not keep(key) or not key or len(key) > 150 or value is None:
            continue
        limit = 256 * 1024 if key in _GEN_AI_UNTRUNCATED else 8 * 1024
        properties[key] = str(value)[:limit]
    return properties


def measurements(attributes: Attrs) -> dict[str, float]:
    """Numbers of the `microsoft.custom_measurements` attribute (a mapping or its JSON)."""
    value = attributes.get(semconv.CUSTOM_MEASUREMENTS)
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


def user_tags(attributes: Attrs, tags: dict[str, Any]) -> None:
    if "enduser.id" in attributes:
        tags["ai.user.authUserId"] = attributes["enduser.id"]
    if "enduser.pseudo.id" in attributes:
        tags["ai.user.id"] = attributes["enduser.pseudo.id"]
    if semconv.is_synthetic(attributes):
        tags["ai.operation.syntheticSource"] = "True"


def envelope(kind: str, ikey: str, unix_nano: int, tags: dict[str, Any], base_data: dict) -> Envelope:
    """Tags are strings in App Insights; an attribute of another type under a semantic key is rendered."""
    return {
        "name": f"Microsoft.ApplicationInsights.{kind}",
        "iKey": ikey,
        "time": _time(unix_nano),
        "tags": {key: value if isinstance(value, str) else str(value) for key, value in tags.items()},
        "data": {"baseType": f"{kind}Data", "baseData": base_data},
    }


def exception_data(attributes: Attrs, properties: dict, measurements: dict, message: Any = None,
                   severity_level: int | None = None) -> dict[str, Any]:
    """ExceptionData with one exception carrying the raw `stack` string (no `parsedStack`)."""
    stack = attributes.get("exception.stacktrace")
    details = {
        "typeName": str(attributes.get("exception.type") or "Exception")[:1024],
        "message": str(message or attributes.get("exception.message") or "Exception")[:32768],
        "hasFullStack": stack is not None,
        "stack": str(stack)[:32768],
    }
    data: dict[str, Any] = {"ver": ENVELOPE_VERSION}
    if severity_level is not None:
        data["severityLevel"] = severity_level
    data.update({"properties": properties, "measurements": measurements, "exceptions": [details]})
    return data
