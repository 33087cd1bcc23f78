"""The 64 KB cap: an oversized item is stored capped, and its whole original kept on disk.

App Insights drops items above 64 KB; we store a capped row that says so (a visible marker, the
original size, `customDimensions.payloadRef`) and write the original envelope to the data dir's blob
folder before the item is acknowledged, so nothing is lost. If the original cannot be written (disk
full, folder unwritable), the whole body is refused with SpillFailed (503 and Retry-After: the
client keeps it and resends) and the originals of its other items written so far are removed.
"""

from __future__ import annotations

import os
from pathlib import Path

import orjson

from collector.ingest.stored_form import SIZED_COLUMNS, TEXT_COLUMNS

ITEM_LIMIT = 64 * 1024
FIELD_LIMIT = 8 * 1024
TEXT_LIMIT = 32 * 1024
MARKER = "…[capped: the item was {size} bytes; the full payload is at customDimensions.payloadRef]"


def row_size(row: dict) -> int:
    """Bytes of text the stored row holds in its free-text and dynamic columns (JSON text by now)."""
    size = 0
    for column in SIZED_COLUMNS:
        value = row.get(column)
        if value is not None:
            size += len(value)
    return size


class SpillFailed(RuntimeError):
    """The original of an oversized item could not be kept; nothing of the body may be acknowledged."""


class Spill:
    """Writes whole originals under <data-dir>/blob/payloads/<service>/<itemId>.json, for one body."""

    def __init__(self, blob_dir: Path):
        self.blob_dir = Path(blob_dir)
        self.written: list[Path] = []

    def write(self, service: str, item_id: str, envelope: object) -> str:
        relative = f"payloads/{service}/{item_id}.json"
        path = self.blob_dir / relative
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.written.append(path)  # before open(): a file that fails half-written is removed too
            with open(path, "wb") as handle:
                handle.write(orjson.dumps(envelope))
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as error:
            self.discard()
            raise SpillFailed(f"cannot keep the original of an item over {ITEM_LIMIT // 1024} KB: {error}") from None
        return relative

    def discard(self) -> None:
        """Remove what this body wrote: its rows will not be committed."""
        for path in self.written:
            try:
                path.unlink(missing_ok=True)
            except OSError:
                pass
        self.written.clear()


def cap_row(row: dict, dynamic_columns: tuple[str, ...], size: int, payload_ref: str) -> None:
    """Shrink a stored-form row below ITEM_LIMIT, in place, marking every cut."""
    marker = MARKER.format(size=size)
    for column in TEXT_COLUMNS:
        value = row.get(column)
        if isinstance(value, str) and len(value) > TEXT_LIMIT:
            row[column] = value[:TEXT_LIMIT] + marker
    for column in dynamic_columns:
        value = row.get(column)
        if isinstance(value, str) and len(value) > FIELD_LIMIT:
            row[column] = _cap_dynamic(orjson.loads(value), marker)
    dimensions = orjson.loads(row.get("customDimensions") or "{}")
    dimensions.update(payloadRef=payload_ref, originalSize=str(size), capped="True")
    row["customDimensions"] = orjson.dumps(dimensions).decode()
    if row_size(row) > ITEM_LIMIT:  # many small fields: keep only the markers
        row["customDimensions"] = orjson.dumps(
            {"payloadRef": payload_ref, "originalSize": str(size), "capped": "True"}
        ).decode()


def _cap_dynamic(value: object, marker: str) -> str:
    if isinstance(value, dict):
        capped = {key: _cap_value(item, marker) for key, item in value.items()}
    elif isinstance(value, list):
        capped = [_cap_value(item, marker) for item in value]
    else:
        capped = _cap_value(value, marker)
    text = orjson.dumps(capped).decode()
    if len(text) > ITEM_LIMIT // 2:
        text = orjson.dumps({"capped": orjson.dumps(capped).decode()[:FIELD_LIMIT] + marker}).decode()
    return text


def _cap_value(value: object, marker: str) -> object:
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    if len(text) <= FIELD_LIMIT:
        return value
    return text[:FIELD_LIMIT] + marker
