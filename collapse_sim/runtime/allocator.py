"""glibc's allocator told to keep freed memory for reuse: :func:`keep_heap`.

Why: one MACE training step allocates and frees hundreds of MB in tensors of 0.1-4 MB (per-edge
features and their gradients). With glibc's defaults the top of the heap goes back to the
kernel as soon as a few hundred kB of it are free, so every step takes the same memory back
page by page, a page fault at a time. Keeping up to ``TRIM_BYTES`` of freed heap (and serving
blocks up to ``MMAP_BYTES`` from the heap, not from fresh mappings) removes most of those faults
and their system time (``benchmarks/bench_train.py``; figures in docs/performance.md). The same
memory is reused, so peak RSS does not grow; results cannot change
(allocation never touches values). Process-wide and permanent, like torch's thread settings in
a worker; a no-op off glibc and when the user set any ``MALLOC_*`` variable (their choice wins).
"""
from __future__ import annotations

import ctypes
import os
import platform
import threading

#: blocks up to this size come from the heap (glibc's ceiling for its own dynamic threshold)
MMAP_BYTES = 32 * 1024 * 1024
#: free memory at the top of a heap kept for reuse before it is returned to the kernel
TRIM_BYTES = 256 * 1024 * 1024

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_lock = threading.Lock()
_state: bool | None = None  # None: not tried yet; else whether the settings are in force


def keep_heap() -> bool:
    """Set the two thresholds once per process; True if they are in force (glibc, no user
    ``MALLOC_*`` settings). Both are needed: a trim threshold alone also fixes the mmap threshold
    at its 128 kB default, and every tensor above it becomes a fresh mapping (far worse)."""
    global _state
    with _lock:
        if _state is None:
            _state = _apply()
        return _state


def _apply() -> bool:
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    if any(k.startswith("MALLOC_") for k in os.environ):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    # mmap first: setting it switches off glibc's dynamic thresholds, then the trim threshold holds
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_BYTES)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, TRIM_BYTES))
