"""xxHash64 (seed 0), the hash Kusto's `hash()` and `hash_xxhash64()` compute: on a string's UTF-8 bytes
(the docs' `hash("World")` is 1846988464401551951, which this gives).

DuckDB has no xxHash (its own `hash()` is another function), so this is Python, run as a UDF
(series_functions.py registers it).
"""

from __future__ import annotations

M = (1 << 64) - 1
P1, P2, P3, P4, P5 = 11400714785074694791, 14029467366897019727, 1609587929392839161, 9650029242287828579, 2870177450012600261


def _rotl(x: int, r: int) -> int:
    return ((x << r) | (x >> (64 - r))) & M


def _round(acc: int, lane: int) -> int:
    return (_rotl((acc + lane * P2) & M, 31) * P1) & M


def _merge(acc: int, v: int) -> int:
    return ((acc ^ _round(0, v)) * P1 + P4) & M


def xxh64(data: bytes, seed: int = 0) -> int:
    """The unsigned 64-bit xxHash of *data*."""
    n, i = len(data), 0
    if n >= 32:
        v = [(seed + P1 + P2) & M, (seed + P2) & M, seed, (seed - P1) & M]
        while i + 32 <= n:
            for k in range(4):
                v[k] = _round(v[k], int.from_bytes(data[i + 8 * k : i + 8 * k + 8], "little"))
            i += 32
        h = (_rotl(v[0], 1) + _rotl(v[1], 7) + _rotl(v[2], 12) + _rotl(v[3], 18)) & M
        for k in range(4):
            h = _merge(h, v[k])
    else:
        h = (seed + P5) & M
    h = (h + n) & M
    while i + 8 <= n:
        h = ((_rotl(h ^ _round(0, int.from_bytes(data[i : i + 8], "little")), 27) * P1) + P4) & M
        i += 8
    if i + 4 <= n:
        h = ((_rotl(h ^ (int.from_bytes(data[i : i + 4], "little") * P1 & M), 23) * P2) + P3) & M
        i += 4
    while i < n:
        h = (_rotl(h ^ (data[i] * P5 & M), 11) * P1) & M
        i += 1
    h ^= h >> 33
    h = (h * P2) & M
    h ^= h >> 29
    h = (h * P3) & M
    h ^= h >> 32
    return h


def kusto_hash(text: str | None, modulo: int | None) -> int | None:
    """`hash(text)` as a signed long, or `hash(text, modulo)` in [0, modulo)."""
    if text is None:
        return None
    value = xxh64(text.encode("utf-8"))
    if modulo is not None:
        return value % modulo if modulo > 0 else None
    return value - (1 << 64) if value >= 1 << 63 else value
