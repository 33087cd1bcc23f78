"""How the collector process's C allocator keeps freed memory (glibc only; elsewhere nothing).

Under ingestion the writer thread and DuckDB's threads allocate and free blocks of a few hundred
KB to a few MB for every group commit (the Arrow tables of a group, DuckDB's vectors and WAL
buffers). glibc's malloc serves a block above its mmap threshold (128 KB at first, raised
dynamically up to 32 MB) with a fresh mmap and unmaps it when freed, and gives back the top of a heap
beyond its trim threshold: the next group then faults the same memory in again, page by page, each
page zeroed by the kernel (`clear_page_erms`, 7-10% of those threads' CPU samples under
bench/ingest.py's load). With the blocks kept in the heap (these settings, as environment
variables) the collector's CPU per item measured 33.6-33.9 µs against 35.8-36.7 (noisy); the store
side alone (bench/store_writer.py) showed no change either way (bench/README.md, part 22i). The
cost: the heap stays near its peak rather than shrinking between commits (RSS within the noise of
a few tens of MB there).
"""

from __future__ import annotations

import ctypes
import logging
import platform

log = logging.getLogger(__name__)

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
"""mallopt's parameter numbers (glibc's malloc.h)."""
MMAP_THRESHOLD = 64 * 2**20
"""Blocks below this come from the heap, and are reused from it once freed."""
TRIM_THRESHOLD = 1 * 2**30
"""Free memory at the top of a heap kept up to this size rather than given back to the kernel."""


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed blocks for reuse (see the module's docstring); False, and
    nothing changed, where the C library is not glibc or refuses."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    kept = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    if not kept:
        log.warning("glibc refused the allocator settings; freed memory is given back as before")
    return kept
