"""Reference data: an uploaded training file (CSV, Parquet or JSON lines) read once and frozen as
sketches, or a window of production data sketched the same way.

Uploads stream to a temporary file under the data dir with their own size limit
(INSIGHTS_REFERENCE_MAX_BYTES, default 1 GB), not the ingestion body limit, and are deleted once
sketched. A file that cannot serve as a reference is a ReferenceError naming the column or the
problem (the API answers 400): unreadable, no rows, nested columns, a column mixing numbers and
text, or columns asked for that the file does not have.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa

from monitoring import sketch
from monitoring.sketch import FeatureSketch

DEFAULT_MAX_BYTES = 2**30
FORMATS = ("csv", "parquet", "jsonl")


class ReferenceError(ValueError):
    """A reference that cannot be used; the message says what and where."""


def max_upload_bytes(environ=os.environ) -> int:
    value = environ.get("INSIGHTS_REFERENCE_MAX_BYTES")
    return int(value) if value and value.isdigit() and int(value) > 0 else DEFAULT_MAX_BYTES


def file_format(name: str | None, declared: str | None) -> str:
    """csv, parquet or jsonl, from `?format=` or the file name's extension."""
    fmt = (declared or "").lower() or Path(name or "").suffix.lstrip(".").lower()
    fmt = {"json": "jsonl", "ndjson": "jsonl", "pq": "parquet"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ReferenceError(f"format {fmt or '(none)'!r}: expected one of {', '.join(FORMATS)} (?format=...)")
    return fmt


def read_table(path: Path, fmt: str) -> pa.Table:
    try:
        if fmt == "csv":
            from pyarrow import csv

            return csv.read_csv(path)
        if fmt == "parquet":
            from pyarrow import parquet

            return parquet.read_table(path)
        from pyarrow import json

        return json.read_json(path)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as error:
        raise ReferenceError(f"cannot read the file as {fmt}: {str(error).splitlines()[0][:300]}") from None


def sketch_table(table: pa.Table, columns: list[str] | None = None, categorical: frozenset[str] = frozenset()) -> dict:
    """The frozen reference: {"rows", "features": {name: sketch}}; ReferenceError if unusable."""
    if table.num_rows == 0:
        raise ReferenceError("the reference has no rows")
    if columns:
        missing = [c for c in columns if c not in table.column_names]
        if missing:
            raise ReferenceError(f"unknown column {missing[0]!r}: the file has {', '.join(table.column_names[:20])}")
        table = table.select(columns)
    features = {name: column_sketch(name, table.column(name), name in categorical).to_json()
                for name in table.column_names}
    return {"rows": table.num_rows, "features": features}


def column_sketch(name: str, column: pa.ChunkedArray, categorical: bool) -> FeatureSketch:
    kind = column.type
    if pa.types.is_nested(kind) or pa.types.is_binary(kind):
        raise ReferenceError(f"column {name!r}: {kind} values are not supported (numbers, text or booleans)")
    nulls = column.null_count
    if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_decimal(kind):
        values = column.drop_null().to_numpy().astype(float)
        nulls += int(np.isnan(values).sum())
        values = values[~np.isnan(values)]
        if categorical or sketch.infer_kind(values) == "categorical":
            return sketch.categorical(name, sketch.category_text(values), nulls)
        return sketch.numerical(name, values, nulls)
    if (pa.types.is_string(kind) or pa.types.is_large_string(kind)) and not categorical:
        _refuse_mixed(name, column)
    text = column.drop_null().cast(pa.string()).to_numpy(zero_copy_only=False)
    if pa.types.is_boolean(kind):
        text = np.where(column.drop_null().to_numpy(zero_copy_only=False), "true", "false")
    return sketch.categorical(name, text.astype(str), nulls)


def _refuse_mixed(name: str, column: pa.ChunkedArray) -> None:
    """A text column that is mostly numbers, with some words among them, is a type error in the
    reference itself: refused, rather than silently treating a numerical feature as categorical."""
    present = column.drop_null()
    if len(present) == 0:
        return
    parsed = np.array([_is_number(v) for v in present.to_pylist()[:100_000]])
    share = parsed.mean()
    if 0.5 <= share < 1.0:
        example = next(v for v, ok in zip(present.to_pylist(), parsed, strict=False) if not ok)
        raise ReferenceError(f"column {name!r} mixes numbers and text (e.g. {example[:40]!r}): "
                             "fix the file, or declare the column categorical")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
