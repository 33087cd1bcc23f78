"""Turning an HTTP body into envelopes: decompression with limits, then a JSON array or NDJSON.

The Azure Python SDKs send one uncompressed JSON array; the .NET, Java and Node SDKs send gzip and
newline-delimited JSON. A malformed line of NDJSON spoils only that item; a malformed array spoils
the whole body, as nothing in it can be trusted. What Python's json module writes by default
(NaN, Infinity, numbers beyond a double) is read, so that such a value is its item's error only.
"""

from __future__ import annotations

import json
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
    encoding = _encoding(content_encoding)
    if not encoding:
        return body
    out = _inflate(body, encoding, MAX_DECODED_BYTES)
    if out is None:
        raise BodyError(f"decompressed body exceeds the limit of {MAX_DECODED_BYTES} bytes", 413)
    return out


def decompress_within(body: bytes, content_encoding: str | None, limit: int) -> bytes | None:
    """The decompressed body if it is at most `limit` bytes, else None; at most limit + 1 bytes
    are decompressed to tell (none if the body or gzip's size trailer is already larger). What
    a body expands to, not its compressed size, says how much work preparing it is."""
    encoding = _encoding(content_encoding)
    if not encoding:
        return body if len(body) <= limit else None
    if len(body) > limit or _gzip_size(body) > limit:
        return None
    return _inflate(body, encoding, limit)


def _encoding(content_encoding: str | None) -> str:
    """'' for an identity body; BodyError 415 for an encoding we do not read."""
    encoding = (content_encoding or "").strip().lower()
    if encoding in ("", "identity"):
        return ""
    if encoding not in ("gzip", "deflate", "x-gzip"):
        raise BodyError(f"unsupported Content-Encoding {content_encoding!r}: use gzip, deflate or none", 415)
    return encoding


def _gzip_size(body: bytes) -> int:
    """The decompressed size a gzip body's trailer states (modulo 2^32, and only a claim: the
    decompression itself stays bounded); 0 if it is not gzip."""
    if body[:2] != b"\x1f\x8b" or len(body) < 18:
        return 0
    return int.from_bytes(body[-4:], "little")


def _inflate(body: bytes, encoding: str, limit: int) -> bytes | None:
    """The decompressed body, None if it exceeds `limit` bytes (decompressing no further)."""
    wbits = 47 if encoding != "deflate" else 15  # 47: gzip or zlib header, detected automatically
    decoder = zlib.decompressobj(wbits)
    try:
        out = decoder.decompress(body, limit + 1)
    except zlib.error as exc:
        raise BodyError(f"body is not valid {encoding}: {exc}") from None
    if len(out) > limit or decoder.unconsumed_tail:
        return None
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
            items = _loads_python(stripped)
            if not isinstance(items, list):
                raise BodyError(f"body is not valid JSON: {exc}") from None
            return [_storable(item) for item in items]
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
        item = _loads_python(line)
        return BadItem(f"line {number} is not valid JSON: {exc}") if item is None else _storable(item)


def _loads_python(data: bytes) -> object | None:
    """What orjson refused, read as Python's json module writes it by default (NaN, Infinity,
    1e400 and integers of any size are values there, of the item that holds them); None if it is
    not JSON that way either."""
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None


def _storable(item: object) -> object:
    """The item, or BadItem if it holds what no column can store and orjson would have refused
    to read: a lone surrogate (`"\\ud800"`), an integer beyond 64 bits."""
    try:
        orjson.dumps(item, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError as exc:
        return BadItem(f"item cannot be stored: {exc}")
    return item
