"""Mapping one App Insights envelope to rows of the telemetry tables.

The mapping follows what Application Insights itself stores (reference/appinsights-protocol.md,
section 7) and is lenient where real SDKs are loose: property values of any JSON type, naive
timestamps, severity as a string, 3 or 7 fractional digits in durations, `parsedStack` as strings or
a `stack` string. What it cannot map it rejects with an ItemError naming the field, so the client
hears which item and why. Known quirks of particular senders are corrected in `quirks.py`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

import orjson

from collector.ingest import quirks
from collector.ingest.cap import TAG_LIMIT
from collector.ingest.stack import exception_chain_from_stack, frames_from_strings

EPOCH = datetime(1970, 1, 1)
EPOCH_UTC = EPOCH.replace(tzinfo=timezone.utc)

TAG_COLUMNS = {
    "ai.operation.id": "operation_Id",
    "ai.operation.name": "operation_Name",
    "ai.operation.parentId": "operation_ParentId",
    "ai.operation.syntheticSource": "operation_SyntheticSource",
    "ai.session.id": "session_Id",
    "ai.user.id": "user_Id",
    "ai.user.authUserId": "user_AuthenticatedId",
    "ai.user.accountId": "user_AccountId",
    "ai.application.ver": "application_Version",
    "ai.device.type": "client_Type",
    "ai.device.model": "client_Model",
    "ai.device.osVersion": "client_OS",
    "ai.location.ip": "client_IP",
    "ai.location.city": "client_City",
    "ai.location.province": "client_StateOrProvince",
    "ai.location.country": "client_CountryOrRegion",
    "ai.cloud.role": "cloud_RoleName",
    "ai.cloud.roleInstance": "cloud_RoleInstance",
    "ai.internal.sdkVersion": "sdkVersion",
}

_SEVERITY_NAMES = {"verbose": 0, "information": 1, "warning": 2, "error": 3, "critical": 4}

_DURATION = re.compile(r"^(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?$")

_BUCKETS = (
    (250, "<250ms"),
    (500, "250ms-500ms"),
    (1_000, "500ms-1sec"),
    (3_000, "1sec-3sec"),
    (7_000, "3sec-7sec"),
    (15_000, "7sec-15sec"),
    (30_000, "15sec-30sec"),
    (60_000, "30sec-1min"),
    (120_000, "1min-2min"),
    (300_000, "2min-5min"),
)


class ItemError(ValueError):
    """One envelope is invalid; `field` is the JSON path of the culprit."""

    def __init__(self, field: str, problem: str):
        super().__init__(f"{field}: {problem}")
        self.field = field


Row = dict[str, object]


def map_envelope(envelope: object) -> list[tuple[str, Row]]:
    """The (table name, row) pairs one envelope becomes; most become one row, MetricData one per metric."""
    if not isinstance(envelope, dict):
        raise ItemError("item", f"expected a JSON object, got {_json_type(envelope)}")
    data = _object(envelope.get("data"), "data")
    base_type = data.get("baseType") or _base_type_from_name(envelope.get("name"))
    if not isinstance(base_type, str) or not base_type:
        raise ItemError("data.baseType", "missing: cannot tell what kind of telemetry this is")
    base = _object(data.get("baseData"), "data.baseData")
    common = _common_columns(envelope)
    mapper = _MAPPERS.get(base_type, _unknown)
    rows = mapper(base, common, base_type)
    return [(table, quirks.correct(table, row)) for table, row in rows]


def _base_type_from_name(name: object) -> str | None:
    """Some SDKs omit baseType; 'Microsoft.ApplicationInsights.<key>.Request' still says it."""
    if not isinstance(name, str):
        return None
    kind = name.rsplit(".", 1)[-1]
    return {
        "Request": "RequestData",
        "RemoteDependency": "RemoteDependencyData",
        "Message": "MessageData",
        "Exception": "ExceptionData",
        "Event": "EventData",
        "Metric": "MetricData",
        "PageView": "PageViewData",
        "Availability": "AvailabilityData",
    }.get(kind)


def _common_columns(envelope: dict) -> Row:
    """The columns every table shares; a fresh dict that the mapper of its type completes."""
    ikey = envelope.get("iKey")
    if not isinstance(ikey, str) or not ikey:
        raise ItemError("iKey", "missing: every item needs the instrumentation key of its service")
    row: Row = {
        "timestamp": parse_time(envelope.get("time"), "time"),
        "iKey": ikey,
        "itemCount": _item_count(envelope.get("sampleRate")),
    }
    tags = envelope.get("tags")
    if tags is not None:
        for tag, value in _object(tags, "tags").items():
            column = TAG_COLUMNS.get(tag)
            if column and value is not None:
                row[column] = str(value)[:TAG_LIMIT]
    return row


def parse_time(value: object, field: str) -> int:
    """Microseconds since the epoch, UTC; a timestamp without offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        raise ItemError(field, "missing: expected an ISO 8601 timestamp")
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ItemError(field, f"not an ISO 8601 timestamp: {value[:64]!r}") from None
    return (moment - (EPOCH if moment.tzinfo is None else EPOCH_UTC)) // _MICROSECOND


_MICROSECOND = datetime(1970, 1, 1, 0, 0, 0, 1) - EPOCH


def _item_count(sample_rate: object) -> int:
    if isinstance(sample_rate, (int, float)) and 0 < sample_rate < 100:
        return max(1, round(100 / sample_rate))
    return 1


def parse_duration(value: object, field: str) -> float:
    """Milliseconds from 'd.hh:mm:ss.fffffff' (or a bare number of ms, which some SDKs send)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        raise ItemError(field, f"expected a duration like '0.00:00:01.500', got {_json_type(value)}")
    match = _DURATION.match(value)
    if not match:
        raise ItemError(field, f"not a duration of the form d.hh:mm:ss.fffffff: {value[:64]!r}")
    days, hours, minutes, seconds, fraction = match.groups()
    total = int(days or 0) * 86_400 + int(hours) * 3_600 + int(minutes) * 60 + int(seconds)
    frac = float("0." + fraction) if fraction else 0.0
    return (total + frac) * 1000.0


def performance_bucket(duration_ms: float) -> str:
    for limit, name in _BUCKETS:
        if duration_ms < limit:
            return name
    return ">=5min"


_KEPT_AS_IS = frozenset((str, dict, list, type(None)))


def custom_dimensions(base: dict) -> dict:
    """baseData.properties as customDimensions: scalars as strings (as App Insights stores them),
    objects and arrays kept as JSON so that `customDimensions.Contents.input` can reach inside."""
    properties = base.get("properties")
    if properties is None:
        return {}
    for value in _object(properties, "data.baseData.properties").values():
        if value.__class__ not in _KEPT_AS_IS:
            break
    else:
        return properties  # the usual case: already as stored
    out = {}
    for key, value in properties.items():
        if isinstance(value, str) or isinstance(value, (dict, list)) or value is None:
            out[key] = value
        elif isinstance(value, bool):
            out[key] = "True" if value else "False"
        else:
            out[key] = str(value)
    return out


def custom_measurements(base: dict) -> dict | None:
    """baseData.measurements as numbers; None (NULL) when there are none."""
    measurements = base.get("measurements")
    if not measurements:
        return None
    out = {}
    for key, value in _object(measurements, "data.baseData.measurements").items():
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise ItemError(f"data.baseData.measurements.{key}", f"expected a number, got {_json_type(value)}")
        try:
            out[key] = float(value)
        except ValueError:
            raise ItemError(f"data.baseData.measurements.{key}", f"expected a number, got {value[:32]!r}") from None
    return out


def _with_dimensions(row: Row, base: dict, item_type: str, measurements: bool = True) -> Row:
    row["itemType"] = item_type
    row["customDimensions"] = custom_dimensions(base)
    if measurements:
        row["customMeasurements"] = custom_measurements(base)
    return row


def _message(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _with_dimensions(common, base, "trace")
    row["message"] = _string(base.get("message"), "data.baseData.message", required=True)
    row["severityLevel"] = severity(base.get("severityLevel"), "data.baseData.severityLevel")
    return [("traces", row)]


def severity(value: object, field: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 4:
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit() and int(text) <= 4:
            return int(text)
        if text.lower() in _SEVERITY_NAMES:
            return _SEVERITY_NAMES[text.lower()]
    raise ItemError(field, f"expected 0-4 or Verbose/Information/Warning/Error/Critical, got {str(value)[:32]!r}")


def _timed(row: Row, base: dict) -> Row:
    duration = parse_duration(base.get("duration"), "data.baseData.duration")
    row["duration"] = duration
    row["performanceBucket"] = performance_bucket(duration)
    row["success"] = _success(base.get("success"))
    row["id"] = _string(base.get("id"), "data.baseData.id")
    row["name"] = _string(base.get("name"), "data.baseData.name")
    return row


def _success(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return True if value is None else bool(value)


def _request(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _timed(_with_dimensions(common, base, "request"), base)
    row["url"] = _string(base.get("url"), "data.baseData.url")
    row["source"] = _string(base.get("source"), "data.baseData.source")
    row["resultCode"] = _string(base.get("responseCode", base.get("resultCode")), "data.baseData.responseCode")
    return [("requests", row)]


def _dependency(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _timed(_with_dimensions(common, base, "dependency"), base)
    row["resultCode"] = _string(base.get("resultCode"), "data.baseData.resultCode")
    for field in ("data", "target", "type"):
        row[field] = _string(base.get(field), f"data.baseData.{field}")
    if row["type"] is None:
        row["type"] = _string(base.get("dependencyTypeName"), "data.baseData.dependencyTypeName")
    return [("dependencies", row)]


def _event(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _with_dimensions(common, base, "customEvent")
    row["name"] = _string(base.get("name"), "data.baseData.name", required=True)
    return [("customEvents", row)]


def _metric(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    metrics = base.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise ItemError("data.baseData.metrics", "expected a non-empty array of metrics")
    dimensions = custom_dimensions(base)
    rows = []
    for index, metric in enumerate(metrics):
        field = f"data.baseData.metrics[{index}]"
        metric = _object(metric, field)
        name = _string(metric.get("name"), f"{field}.name", required=True)
        value = _number(metric.get("value"), f"{field}.value", required=True)
        row = dict(common)
        row.pop("itemCount", None)
        row["customDimensions"] = dimensions
        row["name"] = name
        row["value"] = value
        table = quirks.metric_table(name, dimensions)
        if table == "performanceCounters":
            rows.append((table, quirks.performance_counter(row)))
            continue
        row["itemType"] = "customMetric"
        row["valueSum"] = value
        row["valueCount"] = int(_number(metric.get("count"), f"{field}.count") or 1)
        row["valueMin"] = _number(metric.get("min"), f"{field}.min", default=value)
        row["valueMax"] = _number(metric.get("max"), f"{field}.max", default=value)
        row["valueStdDev"] = _number(metric.get("stdDev"), f"{field}.stdDev", default=0.0)
        rows.append((table, row))
    return rows


def _exception(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    chain = _exception_details(base.get("exceptions"))
    outer, innermost = chain[0], chain[-1]
    frame = (outer.get("parsedStack") or [{}])[0]
    row = _with_dimensions(common, base, "exception")
    row.update(
        type=outer["type"],
        message=outer["message"],
        outerType=outer["type"],
        outerMessage=outer["message"],
        method=frame.get("method"),
        assembly=frame.get("assembly"),
        outerMethod=frame.get("method"),
        outerAssembly=frame.get("assembly"),
        innermostType=innermost["type"],
        innermostMessage=innermost["message"],
        severityLevel=severity(base.get("severityLevel"), "data.baseData.severityLevel"),
        details=chain,
        handledAt=_string(base.get("handledAt"), "data.baseData.handledAt"),
    )
    innermost_frame = (innermost.get("parsedStack") or [{}])[0]
    row["innermostMethod"] = innermost_frame.get("method")
    row["innermostAssembly"] = innermost_frame.get("assembly")
    problem = _string(base.get("problemId"), "data.baseData.problemId")
    row["problemId"] = problem or (f"{row['type']} at {row['method']}" if row["method"] else row["type"])
    return [("exceptions", row)]


def _exception_details(exceptions: object) -> list[dict]:
    """The exception chain, outermost first, each with a parsedStack (level 0 = where it was raised).

    A Python `stack` string holding a chained traceback ('The above exception was the direct
    cause...') is unfolded into the whole chain, so innermostType names the user's own error.
    """
    if not isinstance(exceptions, list) or not exceptions:
        raise ItemError("data.baseData.exceptions", "expected a non-empty array of exceptions")
    chain = []
    for index, item in enumerate(exceptions):
        field = f"data.baseData.exceptions[{index}]"
        item = _object(item, field)
        entry = {
            "id": item.get("id", index + 1),
            "outerId": item.get("outerId", 0),
            "type": _string(item.get("typeName"), f"{field}.typeName", required=True),
            "message": _string(item.get("message"), f"{field}.message") or "",
        }
        parsed = item.get("parsedStack")
        stack = item.get("stack")
        if isinstance(parsed, list):
            entry["parsedStack"] = _frames(parsed, f"{field}.parsedStack")
        elif isinstance(stack, str):
            entry["rawStack"] = stack
            unfolded = exception_chain_from_stack(stack)
            if unfolded:
                entry["parsedStack"] = unfolded[0]["parsedStack"]
                if quirks.is_exc_info_repr(entry["message"]):
                    entry["message"] = unfolded[0]["message"]
                chain.append(entry)
                chain.extend(unfolded[1:])
                continue
        elif parsed is not None or stack is not None:
            raise ItemError(f"{field}.parsedStack", "expected an array of frames or a stack string")
        chain.append(entry)
    return chain


def _frames(parsed: list, field: str) -> list[dict]:
    if all(isinstance(frame, str) for frame in parsed):
        return frames_from_strings(parsed)
    frames = []
    for index, frame in enumerate(parsed):
        frame = _object(frame, f"{field}[{index}]")
        frames.append(
            {
                "level": frame.get("level", index),
                "method": _string(frame.get("method"), f"{field}[{index}].method"),
                "assembly": _string(frame.get("assembly"), f"{field}[{index}].assembly"),
                "fileName": _string(frame.get("fileName"), f"{field}[{index}].fileName"),
                "line": frame.get("line"),
            }
        )
    return sorted(frames, key=lambda f: f["level"] if isinstance(f["level"], int) else 0)


def _page_view(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _with_dimensions(common, base, "pageView")
    row["id"] = _string(base.get("id"), "data.baseData.id")
    row["name"] = _string(base.get("name"), "data.baseData.name")
    row["url"] = _string(base.get("url"), "data.baseData.url")
    if base.get("duration") is not None:
        row["duration"] = parse_duration(base.get("duration"), "data.baseData.duration")
        row["performanceBucket"] = performance_bucket(row["duration"])
    return [("pageViews", row)]


def _availability(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _timed(_with_dimensions(common, base, "availabilityResult"), base)
    row["location"] = _string(base.get("runLocation"), "data.baseData.runLocation")
    row["message"] = _string(base.get("message"), "data.baseData.message")
    return [("availabilityResults", row)]


def _unknown(base: dict, common: Row, base_type: str) -> list[tuple[str, Row]]:
    """A base type we do not model is kept whole, so nothing an SDK sends is lost."""
    row = _with_dimensions(common, base, "unknown")
    row["name"] = base.get("name") if isinstance(base.get("name"), str) else None
    row["baseType"] = base_type
    row["payload"] = base
    return [("unknownTelemetry", row)]


_MAPPERS = {
    "MessageData": _message,
    "RequestData": _request,
    "RemoteDependencyData": _dependency,
    "ExceptionData": _exception,
    "EventData": _event,
    "MetricData": _metric,
    "PageViewData": _page_view,
    "AvailabilityData": _availability,
}


def _object(value: object, field: str) -> dict:
    if not isinstance(value, dict):
        what = "missing" if value is None else f"expected a JSON object, got {_json_type(value)}"
        raise ItemError(field, what)
    return value


def _string(value: object, field: str, required: bool = False) -> str | None:
    if value is None:
        if required:
            raise ItemError(field, "missing")
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float, bool)):
        return str(value)
    raise ItemError(field, f"expected a string, got {_json_type(value)}")


def _number(value: object, field: str, required: bool = False, default: float | None = None) -> float | None:
    if value is None:
        if required:
            raise ItemError(field, "missing")
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemError(field, f"expected a number, got {_json_type(value)}")
    return float(value)


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}.get(
        type(value), "a number" if isinstance(value, (int, float)) else type(value).__name__
    )


def dumps_dynamic(value: object) -> str | None:
    """A dynamic column's JSON text, or NULL."""
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()
