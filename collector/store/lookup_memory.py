"""The lookup index's newest entries, held in memory until they are written as a run (see
collector/store/lookup_index.py), and where the readers of a store's file find them: the stores
open in this process, by the `recent_token` each wrote in its `lookup_state` at open."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import pyarrow as pa

Chunk = tuple[np.ndarray, np.ndarray, np.ndarray]
"""Entries as (hashes uint64, table numbers uint8, `_seq`s int64)."""


@dataclass(frozen=True)
class Recent:
    """The entries of the rows after `through` (by `_seq`), in memory: one (hashes, table numbers,
    `_seq`s) chunk per group commit. Never changed once made: the writer replaces the whole, so a
    reader holds one consistent view without a lock."""

    through: int
    chunks: tuple[Chunk, ...] = ()

    @property
    def count(self) -> int:
        return sum(len(hashes) for hashes, _, _ in self.chunks)

    def added(self, chunk: Chunk) -> Recent:
        return Recent(self.through, (*self.chunks, chunk)) if len(chunk[0]) else self

    def find(self, hashes: list[int], numbers: list[int]) -> dict[int, list[int]]:
        """The `_seq`s of these hashes' entries, by table number."""
        wanted = np.array(hashes, dtype=np.uint64)
        found: dict[int, list[int]] = {}
        for chunk_hashes, chunk_numbers, chunk_seqs in self.chunks:
            hits = np.flatnonzero(np.isin(chunk_hashes, wanted))
            for number, seq in zip(chunk_numbers[hits].tolist(), chunk_seqs[hits].tolist(), strict=True):
                if number in numbers:
                    found.setdefault(number, []).append(seq)
        return found

    def run(self) -> pa.Table:
        """The entries as one run, in hash order at the grain of row groups (by the top 16 bits of
        the hash: a radix sort, ~4x faster than a full sort of a million, and a row group of 122,880
        entries covers as narrow a hash range either way)."""
        hashes, numbers, seqs = (np.concatenate(parts) for parts in zip(*self.chunks, strict=True))
        order = np.argsort((hashes >> np.uint64(48)).astype(np.uint16), kind="stable")
        return pa.table({"h": hashes[order], "t": numbers[order], "seq": seqs[order]})


EMPTY = (np.empty(0, np.uint64), np.empty(0, np.uint8), np.empty(0, np.int64))


def compiled_chunk(entries: list[tuple[int, bytes, bytes]]) -> Chunk:
    """The entries the C pass made, (table number, hashes, `_seq`s) per table, as one chunk."""
    hashes = np.frombuffer(b"".join(h for _, h, _ in entries), dtype=np.uint64)
    seqs = np.frombuffer(b"".join(s for _, _, s in entries), dtype=np.int64)
    counts = [len(h) // 8 for _, h, _ in entries]
    return hashes, np.repeat(np.array([t for t, _, _ in entries], dtype=np.uint8), counts), seqs


class Holder(Protocol):
    recent: Recent


_OPEN: dict[int, Holder] = {}


def publish(token: int, holder: Holder) -> None:
    """Readers of the store that wrote `token` find its memory in `holder.recent` from now on."""
    _OPEN[token] = holder


def withdraw(token: int) -> None:
    _OPEN.pop(token, None)


def recent_of(token: int) -> Recent | None:
    """The memory of the store that wrote `token`, if it is open in this process."""
    holder = _OPEN.get(token)
    return holder.recent if holder is not None else None
