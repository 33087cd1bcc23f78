"""Mapping one App Insights envelope to rows of the telemetry tables.

The mapping follows what Application Insights itself stores (reference/appinsights-protocol.md,
section 7) and is lenient where real SDKs are loose: property values of any JSON type, naive
timestamps, severity as a string, 3 or 7 fractional digits in durations, `parsedStack` as strings or
a `stack` string. What it cannot map it rejects with an ItemError naming the field, so the client
hears which item and why. Known quirks of particular senders are corrected in `quirks.py`.
"""

from __future__ import annotations

from collector.ingest import quirks
from collector.ingest.stack import exception_chain_from_stack, frames_from_strings
from collector.ingest.stored_form import INT_MAX, ITEM_TYPES, MAX_NESTING, TAG_COLUMNS, TAG_LIMIT
from collector.ingest.values import (
    NESTED_TOO_DEEP,
    ItemError,
    as_number,
    as_object,
    as_string,
    custom_dimensions,
    custom_measurements,
    json_type,
    metric_statistics,
    parse_duration,
    parse_time,
    performance_bucket,
    severity,
    too_deep,
)

Row = dict[str, object]


def map_envelope(envelope: object) -> list[tuple[str, Row]]:
    """The (table name, row) pairs one envelope becomes; most become one row, MetricData one per metric."""
    if not isinstance(envelope, dict):
        raise ItemError("item", f"expected a JSON object, got {json_type(envelope)}")
    data = as_object(envelope.get("data"), "data")
    base_type = data.get("baseType") or _base_type_from_name(envelope.get("name"))
    if not isinstance(base_type, str) or not base_type:
        raise ItemError("data.baseType", "missing: cannot tell what kind of telemetry this is")
    base = as_object(data.get("baseData"), "data.baseData")
    common = _common_columns(envelope)
    mapper = _MAPPERS.get(base_type, _unknown)
    rows = mapper(base, common, base_type)
    for table, row in rows:
        row["itemType"] = ITEM_TYPES[table]
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
        for tag, value in as_object(tags, "tags").items():
            column = TAG_COLUMNS.get(tag)
            if column and value is not None:
                if value.__class__ is not str:
                    if too_deep(value, MAX_NESTING):  # str() would recurse; the text is cut anyway
                        raise ItemError(f"tags.{tag}", NESTED_TOO_DEEP)
                    value = str(value)
                row[column] = value[:TAG_LIMIT]
    return row


_SMALLEST_SAMPLE_RATE = 100 / INT_MAX
"""Below about this, 100/sampleRate (the itemCount) is more than a 32-bit int holds."""


def _item_count(sample_rate: object) -> int:
    """round(100/sampleRate), the items this one stands for; 1 for a rate outside (0, 100), as
    before, but a rate so small that the count overflows itemCount is the item's error."""
    if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate < 100):
        return 1
    count = round(100 / sample_rate) if sample_rate >= _SMALLEST_SAMPLE_RATE / 2 else INT_MAX + 1
    if count > INT_MAX:
        raise ItemError(
            "sampleRate", f"{sample_rate} makes itemCount (100/sampleRate) overflow its 32-bit column: "
            f"expected a percentage from {_SMALLEST_SAMPLE_RATE!r} to 100",
        )
    return max(1, count)


def _with_dimensions(row: Row, base: dict, measurements: bool = True) -> Row:
    row["customDimensions"] = custom_dimensions(base)
    if measurements:
        row["customMeasurements"] = custom_measurements(base)
    return row


def _message(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _with_dimensions(common, base)
    row["message"] = as_string(base.get("message"), "data.baseData.message", required=True)
    row["severityLevel"] = severity(base.get("severityLevel"), "data.baseData.severityLevel")
    return [("traces", row)]


def _timed(row: Row, base: dict) -> Row:
    duration = parse_duration(base.get("duration"), "data.baseData.duration")
    row["duration"] = duration
    row["performanceBucket"] = performance_bucket(duration)
    row["success"] = _success(base.get("success"))
    row["id"] = as_string(base.get("id"), "data.baseData.id")
    row["name"] = as_string(base.get("name"), "data.baseData.name")
    return row


def _success(value: object) -> bool:
    if isinstance(value, str):
        return value.strip().lower() != "false"
    return True if value is None else bool(value)


def _request(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _timed(_with_dimensions(common, base), base)
    row["url"] = as_string(base.get("url"), "data.baseData.url")
    row["source"] = as_string(base.get("source"), "data.baseData.source")
    row["resultCode"] = as_string(base.get("responseCode", base.get("resultCode")), "data.baseData.responseCode")
    return [("requests", row)]


def _dependency(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _timed(_with_dimensions(common, base), base)
    row["resultCode"] = as_string(base.get("resultCode"), "data.baseData.resultCode")
    for field in ("data", "target", "type"):
        row[field] = as_string(base.get(field), f"data.baseData.{field}")
    if row["type"] is None:
        row["type"] = as_string(base.get("dependencyTypeName"), "data.baseData.dependencyTypeName")
    return [("dependencies", row)]


def _event(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _with_dimensions(common, base)
    row["name"] = as_string(base.get("name"), "data.baseData.name", required=True)
    return [("customEvents", row)]


def _metric(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    metrics = base.get("metrics")
    if not isinstance(metrics, list) or not metrics:
        raise ItemError("data.baseData.metrics", "expected a non-empty array of metrics")
    dimensions = custom_dimensions(base)
    rows = []
    for index, metric in enumerate(metrics):
        field = f"data.baseData.metrics[{index}]"
        metric = as_object(metric, field)
        name = as_string(metric.get("name"), f"{field}.name", required=True)
        value = as_number(metric.get("value"), f"{field}.value", required=True)
        row = dict(common)
        row.pop("itemCount", None)
        row["customDimensions"] = dimensions
        row["name"] = name
        row["value"] = value
        table = quirks.metric_table(name, dimensions)
        if table == "performanceCounters":
            rows.append((table, quirks.performance_counter(row)))
            continue
        row["valueSum"] = value
        row["valueCount"], row["valueMin"], row["valueMax"], row["valueStdDev"] = metric_statistics(metric, field, value)
        rows.append((table, row))
    return rows


def _exception(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    chain = _exception_details(base.get("exceptions"))
    outer, innermost = chain[0], chain[-1]
    frame = (outer.get("parsedStack") or [{}])[0]
    row = _with_dimensions(common, base)
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
        handledAt=as_string(base.get("handledAt"), "data.baseData.handledAt"),
    )
    innermost_frame = (innermost.get("parsedStack") or [{}])[0]
    row["innermostMethod"] = innermost_frame.get("method")
    row["innermostAssembly"] = innermost_frame.get("assembly")
    problem = as_string(base.get("problemId"), "data.baseData.problemId")
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
        item = as_object(item, field)
        entry = {
            "id": item.get("id", index + 1),
            "outerId": item.get("outerId", 0),
            "type": as_string(item.get("typeName"), f"{field}.typeName", required=True),
            "message": as_string(item.get("message"), f"{field}.message") or "",
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
        frame = as_object(frame, f"{field}[{index}]")
        frames.append(
            {
                "level": frame.get("level", index),
                "method": as_string(frame.get("method"), f"{field}[{index}].method"),
                "assembly": as_string(frame.get("assembly"), f"{field}[{index}].assembly"),
                "fileName": as_string(frame.get("fileName"), f"{field}[{index}].fileName"),
                "line": frame.get("line"),
            }
        )
    return sorted(frames, key=lambda f: f["level"] if isinstance(f["level"], int) else 0)


def _page_view(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _with_dimensions(common, base)
    row["id"] = as_string(base.get("id"), "data.baseData.id")
    row["name"] = as_string(base.get("name"), "data.baseData.name")
    row["url"] = as_string(base.get("url"), "data.baseData.url")
    if base.get("duration") is not None:
        row["duration"] = parse_duration(base.get("duration"), "data.baseData.duration")
        row["performanceBucket"] = performance_bucket(row["duration"])
    return [("pageViews", row)]


def _availability(base: dict, common: Row, _: str) -> list[tuple[str, Row]]:
    row = _timed(_with_dimensions(common, base), base)
    row["location"] = as_string(base.get("runLocation"), "data.baseData.runLocation")
    row["message"] = as_string(base.get("message"), "data.baseData.message")
    return [("availabilityResults", row)]


def _unknown(base: dict, common: Row, base_type: str) -> list[tuple[str, Row]]:
    """A base type we do not model is kept whole, so nothing an SDK sends is lost."""
    row = _with_dimensions(common, base)
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
