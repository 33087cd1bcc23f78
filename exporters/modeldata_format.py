"""Continuous export of `modelData` (record type `ModelData`) in Azure ML's model data collector
layout, beside the App Insights folders:

    modelDataCollector/{endpoint}/{deployment}/{collection}/{yyyy}/{MM}/{dd}/{HH}/{instance}.jsonl

one CloudEvents-style JSON object per line, one object per collect() call (the rows of a DataFrame
are `data`, in their order), as Azure ML writes them: `specversion`, `id`, `source`, `type`
(`azureml.inference.<collection>`), `datacontenttype`, `time`, `data`, `correlationid`,
`xrequestid`, `modelversion`, `collectdatatype`, `agent`, `contentrange`; plus `operationid`, the
request's operation_Id. Where Azure puts an instance id, ours is the exported `_seq` range, so a
re-export of a range after a crash overwrites the same files instead of adding copies (the export
loop in export.py plans each range before writing it).
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

import orjson

from collector.store.exports import BlobRange, ExportState
from collector.store.schema import TABLES
from collector.store.services import Service
from exporters.sinks import Sink

MODEL_DATA = "ModelData"
ROOT = "modelDataCollector"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def plan_name(service: Service, span: BlobRange) -> str:
    """What the export checkpoint records for a range (its files are named from their rows)."""
    return f"{ROOT}/{_segment(service.name)}/{span.first:016d}-{span.last:016d}"


def write_model_data(state: ExportState, service: Service, span: BlobRange, sink: Sink) -> int:
    """Write the range's rows as Azure ML's files; the number of rows exported."""
    rows_file = sink.staging_file()
    try:
        items = state.write_ndjson(TABLES["modelData"], service.name, span, rows_file)
        files = _events_by_file(rows_file, service.name, span)
    finally:
        rows_file.unlink(missing_ok=True)
    for name, events in files.items():
        staged = sink.staging_file()
        try:
            staged.write_bytes(b"".join(orjson.dumps(_with_range(event)) + b"\n" for event in events.values()))
            sink.publish(staged, name)
        finally:
            staged.unlink(missing_ok=True)
    return items


def _events_by_file(rows_file: Path, service: str, span: BlobRange) -> dict[str, dict[tuple, dict]]:
    files: dict[str, dict[tuple, dict]] = defaultdict(dict)
    with open(rows_file, "rb") as handle:
        for line in handle:
            if line.strip():
                row = orjson.loads(line)
                name = _file_name(row, service, span)
                key = (row.get("correlationId"), row.get("operation_Id"), row["timestamp"])
                event = files[name].get(key)
                if event is None:
                    event = files[name][key] = _event(row)
                event["data"].append(row.get("data"))
    return files


def _file_name(row: dict, service: str, span: BlobRange) -> str:
    stamp = row["timestamp"]  # 2026-12-06T08:45:12.123456Z
    hour = f"{stamp[0:4]}/{stamp[5:7]}/{stamp[8:10]}/{stamp[11:13]}"
    parts = [_segment(row.get("endpoint") or service), _segment(row.get("deployment") or "default"),
             _segment(row.get("collection") or "unknown")]
    return f"{ROOT}/{'/'.join(parts)}/{hour}/{span.first:016d}-{span.last:016d}.jsonl"


def _event(row: dict) -> dict:
    collection = row.get("collection") or "unknown"
    return {
        "specversion": "1.0",
        "id": row.get("itemId"),
        "source": f"/endpoints/{row.get('endpoint')}/deployments/{row.get('deployment')}",
        "type": f"azureml.inference.{collection}",
        "datacontenttype": "application/json",
        "time": row["timestamp"],
        "data": [],
        "correlationid": row.get("correlationId"),
        "xrequestid": row.get("correlationId"),
        "operationid": row.get("operation_Id"),
        "modelversion": row.get("modelVersion") or "default",
        "collectdatatype": "pandas.core.frame.DataFrame",
        "agent": "endpoint-insights",
        "contentrange": None,
    }


def _with_range(event: dict) -> dict:
    size = len(orjson.dumps(event["data"]))
    return {**event, "contentrange": f"bytes 0-{size - 1}/{size}"}


def _segment(text: str) -> str:
    """A path segment that cannot climb out of its folder."""
    safe = _UNSAFE.sub("_", str(text))[:128]
    return safe if safe.strip(".") else "_"
