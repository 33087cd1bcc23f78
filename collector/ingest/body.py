"""Turning an HTTP body into envelopes: decompression with limits, then a JSON array or NDJSON.

The Azure Python SDKs send one uncompressed JSON array; the .NET, Java and Node SDKs send gzip and
newline-delimited JSON. A malformed line of NDJSON spoils only that item; a malformed array spoils
the whole body, as nothing in it can be trusted.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import orjson

MAX_BODY_BYTES = 32 * 2**20
"""Largest body accepted on the wire (compressed or not): App Insights' own limit is 64 MB
decompressed per batch; ours is documented in the README."""

MAX_DECODED_BYTES = 64 * 2**20
"""Largest body once decompressed; a gzip bomb stops here instead of filling memory."""


class BodyError(ValueError):
    """The body as a whole cannot be read; the message says why and where."""

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code

    def __reduce__(self):  # raised in ingestion workers: keep the status code across processes
        return (BodyError, (str(self), self.status_code))


@dataclass(slots=True)
class BadItem:
    """An item that could not even be parsed; reported by index, never stored."""

    message: str


def decompress(body: bytes, content_encoding: str | None) -> bytes:
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise BodyError(f"unsupported Content-Encoding {content_encoding!r}: use gzip, deflate or none", 415)
    wbits = 47 if encoding != "deflate" else 15  # 47: gzip or zlib header, detected automatically
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, MAX_DECODED_BYTES + 1)
    except zlib.error as exc:
        raise BodyError(f"body is not valid {encoding}: {exc}") from None
    if len(out) > MAX_DECODED_BYTES or decoder.unconsumed_tail:
        raise BodyError(f"decompressed body exceeds the limit of {MAX_DECODED_BYTES} bytes", 413)
    if not decoder.eof:
        raise BodyError(f"body is not valid {encoding}: the compressed stream is truncated")
    return out


def split_items(data: bytes) -> list[object]:
    """The envelopes of a body: parsed objects, or BadItem for lines that are not JSON."""
    stripped = data.strip()
    if not stripped:
        raise BodyError("body is empty: expected a JSON array or newline-delimited JSON envelopes")
    if stripped[:1] == b"[":
        try:
            items = orjson.loads(stripped)
        except orjson.JSONDecodeError as exc:
            raise BodyError(f"body is not valid JSON: {exc}") from None
        if not isinstance(items, list):
            raise BodyError("body is not valid JSON")
        return items
    lines = _lines(stripped)
    try:  # one parser call for the whole body is much faster than one per line
        items = orjson.loads(b"[" + b",".join(lines) + b"]")
        if len(items) == len(lines):
            return items
    except orjson.JSONDecodeError:
        pass
    return [_parse_line(line, number) for number, line in enumerate(lines, start=1)]


def _lines(data: bytes) -> list[bytes]:
    return [line for line in data.split(b"\n") if line.strip()]


def _parse_line(line: bytes, number: int) -> object:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return BadItem(f"line {number} is not valid JSON: {exc}")
