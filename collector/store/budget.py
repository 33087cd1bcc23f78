"""How much of a memory limit the store's ingestion may keep: the rows the writer holds before a
commit (with a spool) and the WAL it lets grow before a checkpoint. Both stay in memory until
then, beside what queries need; without a limit set, DuckDB's default (80% of RAM) leaves the
defaults (HOLD_ROWS, CHECKPOINT_WAL_BYTES) as they are."""

from __future__ import annotations

from collector.store.writer import GROUP_TARGET_ROWS, HOLD_ROWS

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
