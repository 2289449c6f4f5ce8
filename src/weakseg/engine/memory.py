"""The C allocator's settings for training on a CPU.

Every training step allocates and frees the same large tensors (activations, gradients). glibc's
malloc serves blocks above its mmap threshold with fresh ``mmap`` calls and gives freed memory at
the top of the heap back to the kernel, so each step faults the same amount of memory in again,
one zeroed 4 KiB page at a time (where transparent huge pages are ``madvise`` only). On the 2-core
machine a CPU-protocol run spent a third of its CPU time in the kernel that way, and keeping the
memory trained 1.5x as many images a second (benchmarks.allocator; RESULTS.md "C allocator").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_TOP_PAD = -2
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 << 20  # glibc's largest mmap threshold on 64-bit
INT_MAX = 2**31 - 1


def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed memory in the process for reuse: blocks up to 32 MiB come
    from the heap (not from mmap), the heap is never trimmed, and it grows in steps of 64 MiB.
    The process's resident memory then stays at its peak instead of shrinking between steps.

    Returns False (and changes nothing) where the C library is not glibc (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    settings = ((M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX), (M_TRIM_THRESHOLD, INT_MAX),
                (M_TOP_PAD, 64 << 20))  # fmt: skip
    return all(mallopt(param, value) == 1 for param, value in settings)
