"""The collector process keeps what its C allocator frees (collector/allocator.py), on glibc only."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from collector import allocator

# In a process of its own: the settings are the process's, for good. Prints the bytes glibc
# serves from mmaps while a 16 MB block is held, and its heap's free bytes once the block is freed.
_PROBE = """
import ctypes, sys
from collector.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = (ctypes.c_void_p,)
libc.mallinfo2.restype = MallInfo2
kept = sys.argv[1] == "keep" and keep_freed_memory()
block = libc.malloc(16 * 2**20)
ctypes.memset(block, 1, 16 * 2**20)
mapped = libc.mallinfo2().hblkhd
libc.free(block)
print(kept, mapped, libc.mallinfo2().fordblks)
"""


def _probe(mode: str) -> tuple[bool, int, int]:
    out = subprocess.run([sys.executable, "-c", _PROBE, mode], capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1]), int(out[2])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the settings are glibc's")
def test_a_freed_block_stays_in_the_heap_for_the_next_one():
    kept, mapped, free_after = _probe("keep")
    assert kept
    assert mapped < 16 * 2**20  # served from the heap, not a fresh mmap
    assert free_after >= 16 * 2**20  # and kept there once freed, not given back

    kept, mapped, free_after = _probe("default")
    assert not kept
    assert mapped >= 16 * 2**20  # glibc's default: an mmap of its own, unmapped when freed


def test_other_c_libraries_are_left_as_they_are(monkeypatch):
    monkeypatch.setattr(platform, "libc_ver", lambda: ("musl", "1.2"))
    assert allocator.keep_freed_memory() is False
