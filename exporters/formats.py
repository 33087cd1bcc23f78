"""The continuous-export format: blob names in the App Insights layout. The NDJSON bodies, in the row
format of DESIGN.md (the one `insights import` reads back), are written by the store
(collector/store/exports.py), which can do it without a row passing through Python."""

from __future__ import annotations

from datetime import datetime

from collector.store.exports import BlobRange, select_sql, write_ndjson

__all__ = ["BlobRange", "blob_name", "select_sql", "write_ndjson"]


def blob_name(service: str, instrumentation_key: str, record_type: str, span: BlobRange, written: datetime) -> str:
    """`{service}_{ikey}/{Type}/{yyyy-MM-dd}/{HH}/{blobId}_{yyyyMMdd_HHmmss}.blob`.

    App Insights uses a random GUID as blobId; ours is the `_seq` range, so the same range always
    gets the same name and a re-export after a crash overwrites instead of duplicating. `written`
    is fixed when the range is planned, for the same reason.
    """
    blob_id = f"{span.first:016d}-{span.last:016d}"
    return (
        f"{service}_{instrumentation_key.replace('-', '')}/{record_type}/"
        f"{written:%Y-%m-%d}/{written:%H}/{blob_id}_{written:%Y%m%d_%H%M%S}.blob"
    )
