"""When the writer commits and checkpoints: the rows it groups, how long it waits for more, what
it holds with a spool, the WAL it lets grow, and how the last two shrink under a memory limit
(rows held and rows not yet checkpointed stay in memory beside what queries need; without a limit
set, DuckDB's default of 80% of RAM leaves HOLD_ROWS and CHECKPOINT_WAL_BYTES as they are).
writer.py reads them here at each use (HOLD_ROWS, CHECKPOINT_WAL_BYTES: at a Store's open); a
test may set them."""

from __future__ import annotations

MAX_GROUP_ROWS = 200_000
"""Rows committed in one transaction at most; bounds the latency of a group commit."""

GROUP_TARGET_ROWS = 4_000
GROUP_WAIT_SECONDS = 0.03
"""While batches are still being prepared, a group waits this long at most for them, until it
holds GROUP_TARGET_ROWS: each INSERT costs ~1.3 ms whatever its size, so a group of 1,000 rows
spends twice the CPU per row of a group of 4,000, and that CPU is what the preparing lacks."""

HOLD_ROWS = 32_000
HOLD_SECONDS = 0.05
"""With a spool (see spool.py): rows acknowledged and held before the writer commits them to DuckDB
in one transaction, and how long the writer waits for another batch before it commits fewer. A
group of 16,000-32,000 rows costs the store side ~5.5 µs per item against ~13 for the 4,000 that
16 connections keep in flight (bench/README.md, part 22s). Past twice that many rows held, the
intake thread answers nothing more until a commit makes room: clients wait for DuckDB again, as
without a spool, and the rows held in memory stay bounded while a heavy query slows the commits."""

HELD_REFUSED_SECONDS = 10.0
"""With a spool, how long DuckDB may refuse the held rows (retried at every batch and lull: a
query may hold the memory a commit needs) before each held batch is tried alone, and one refused
alone is set aside (Spool.set_aside) so that the others, and what comes after, go in."""

CHECKPOINT_IDLE_SECONDS = 2.0
CHECKPOINT_WAL_BYTES = 256 * 2**20
"""Under constant load, checkpoint when the WAL reaches this size (INSIGHTS_CHECKPOINT_WAL_BYTES
overrides it). A checkpoint rewrites every row group that received rows since the last one, old rows
included, so rarer checkpoints rewrite less: at 64 MB a 60 s load sustained 42k items/s, at 256 MB
49k (bench/README.md). Replaying a WAL this size after a crash takes ~2 s. The checkpoint runs in
the writer thread: DuckDB refuses one while a write transaction is open ("Cannot CHECKPOINT: there
are other write transactions active"), so it cannot run beside the commits."""


HOLD_BYTES_PER_ROW = 37_500
"""Under a memory limit, a store holds at most limit / this many rows: a held group's commit needs
memory outside DuckDB's own accounting that grows with its rows (its tables combined, the
transaction's copy, the WAL's buffer). Under tests/security/test_queries.py's heaviest queries
with 300 MB, groups of 16,000 rows took the collector's peak 5-35 MB past its baseline plus the
limit, and groups of 8,000 within or up to 30 MB past it (with the checkpoints of the time, before
WAL_SHARE_OF_MEMORY)."""


def hold_rows_within(memory_limit_bytes: int) -> int:
    """The rows a store with this DuckDB memory limit holds before it commits (HOLD_BYTES_PER_ROW)."""
    return max(GROUP_TARGET_ROWS, min(HOLD_ROWS, memory_limit_bytes // HOLD_BYTES_PER_ROW))


WAL_SHARE_OF_MEMORY = 4
"""Under a memory limit, checkpoint before the WAL passes limit / this. Rows committed but not yet
checkpointed stay in DuckDB's memory (`duckdb_memory()`'s IN_MEMORY_TABLE, ~1.1x the WAL's
bytes): at 256 MB of WAL under a 300 MB limit they held 275 MB of it, and queries had the rest."""


def checkpoint_wal_bytes_within(wanted: int, memory_limit_bytes: int) -> int:
    """The WAL size that triggers a checkpoint for a store with this memory limit (WAL_SHARE_OF_MEMORY)."""
    return min(wanted, memory_limit_bytes // WAL_SHARE_OF_MEMORY)
