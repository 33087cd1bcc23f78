"""Known quirks of real senders, corrected at ingestion so that the columns tell the truth.

- azmlinfsrv (azureml-inference-server-http 1.5) opens its request span after the response is
  built and names attributes outside the OTel conventions, so every request arrives with duration 0,
  responseCode "0" and success true; the real values travel only as string customDimensions.
- azmlinfsrv logs exceptions with `message` = repr of the exc_info tuple and packs its
  custom_dimensions into one stringified Python dict.
- SDK self-telemetry (OTel `_OTELRESOURCE_`, customer SDKStats `Item_*_Count`, opencensus
  standard metrics named like Windows performance counters) is not the user's metrics: it goes to
  `performanceCounters`, as Application Insights keeps it out of `customMetrics`.
"""

from __future__ import annotations

import ast
import re

from collector.ingest import values
from collector.ingest.stored_form import MAX_NESTING

_SDK_METRICS = {"_OTELRESOURCE_", "Item_Success_Count", "Item_Dropped_Count", "Item_Retry_Count"}
_COUNTER = re.compile(r"^\\(?P<category>[^\\(]+)(?:\((?P<instance>[^)]*)\))?\\(?P<counter>.+)$")


def correct(table: str, row: dict) -> dict:
    dimensions = row.get("customDimensions")
    if isinstance(dimensions, dict) and isinstance(dimensions.get("custom_dimensions"), str):
        _unpack_custom_dimensions(dimensions)
    if table == "requests" and isinstance(dimensions, dict):
        _true_request_columns(row, dimensions)
    return row


def is_exc_info_repr(message: str) -> bool:
    return message.startswith("(<class '") and "<traceback object at " in message


def _unpack_custom_dimensions(dimensions: dict) -> None:
    """azmlinfsrv sends {"custom_dimensions": "{'Request Id': '...'}"}: a Python literal."""
    text = dimensions["custom_dimensions"]
    try:
        value = ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return
    if isinstance(value, dict) and not values.too_deep(value, MAX_NESTING):  # else kept as the string
        del dimensions["custom_dimensions"]
        for key, item in value.items():
            dimensions.setdefault(str(key), item if isinstance(item, (str, dict, list)) else str(item))


def _true_request_columns(row: dict, dimensions: dict) -> None:
    if row.get("resultCode") not in ("0", None) or row.get("duration") not in (0.0, None):
        return
    code, duration = dimensions.get("resultCode"), dimensions.get("duration")
    if not isinstance(code, str) or not isinstance(duration, str):
        return
    try:
        row["duration"] = values.parse_duration(duration, "duration")
    except values.ItemError:
        return
    row["performanceBucket"] = values.performance_bucket(row["duration"])
    row["resultCode"] = code
    row["success"] = _succeeded(dimensions.get("success"), code)
    if not row.get("url") and isinstance(dimensions.get("url"), str):
        row["url"] = dimensions["url"]
    method = dimensions.get("http_method")
    if isinstance(method, str) and row.get("name") and not row["name"].startswith(method + " "):
        row["name"] = f"{method} {row['name']}"
        row["operation_Name"] = row["name"]
    _timing_from_start(row, dimensions.get("start_time"))


def _timing_from_start(row: dict, start_time: object) -> None:
    """azmlinfsrv stamps the envelope when the request ended and keeps its start in start_time;
    App Insights times a request from its start, and the difference is the duration to the
    microsecond, where the duration string has only milliseconds (0 for a fast run())."""
    if not isinstance(start_time, str):
        return
    try:
        start = values.parse_time(start_time, "start_time")
    except values.ItemError:
        return
    end = row["timestamp"]
    if end >= start:
        row["duration"] = (end - start) / 1000.0
        row["performanceBucket"] = values.performance_bucket(row["duration"])
    row["timestamp"] = start


def _succeeded(flag: object, code: str) -> bool:
    if isinstance(flag, str):
        return flag.strip().lower() == "true"
    return not (code.isdecimal() and (len(code) > 9 or int(code) >= 400))


def metric_table(name: str, dimensions: dict) -> str:
    if name in _SDK_METRICS or name.startswith("\\"):
        return "performanceCounters"
    return "customMetrics"


def performance_counter(row: dict) -> dict:
    name = row["name"]
    match = _COUNTER.match(name)
    if match:
        row.update(category=match["category"], counter=match["counter"], instance=match["instance"])
    else:
        row.update(category="SDK", counter=name)
    return row
