"""Keep freed memory in the process, so the data path does not page-fault through every image it builds.

glibc serves an allocation above its mmap threshold (at most 32 MiB however it adapts) with a fresh ``mmap`` and
unmaps it on free; the next one page-faults its way through new zeroed pages again. The data path allocates such
blocks for every image and batch (a batch of four 1024x768 images is 75 MiB of float32 rows in ms-swift's layout), so
with the defaults much of a DataLoader's CPU time went to the kernel; training on a CPU pays the same in the logits
over a 152k vocabulary. With the thresholds raised, freed blocks are reused from the heap. The measured effect on
the data path and on a CPU training step is in docs/performance.md (``benchmarks/data_throughput.py``).

Applied by ``python -m src.sft`` and ``python -m src.eval`` at start (DataLoader workers are forked and inherit it).
The environment wins: with ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` set (glibc's own variables) or
on a C library other than glibc, nothing is changed. The cost is memory the process keeps after a peak: up to
``TRIM_THRESHOLD`` per process (the benchmark's peak memory is in docs/performance.md).
"""
from __future__ import annotations

import ctypes
import os
import platform

MMAP_THRESHOLD = 512 << 20
"""Blocks up to 512 MiB come from the heap (glibc's M_MMAP_THRESHOLD): a 1024x768 image's rows, a batch of them,
and on a CPU the logits over Qwen's 152k vocabulary (131 MiB for 216 positions in float32)."""
TRIM_THRESHOLD = 1 << 30
"""Up to 1 GiB of free memory at the top of the heap is kept for reuse (glibc's M_TRIM_THRESHOLD)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
ENV_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')


def keep_freed_memory() -> str:
    """Raise glibc's mmap and trim thresholds for this process; returns what was done, for the log."""
    chosen = [name for name in ENV_VARIABLES if name in os.environ]
    if chosen:
        return f'allocator: left as the environment sets it ({", ".join(chosen)})'
    if platform.libc_ver()[0] != 'glibc':
        return 'allocator: left as it is (not glibc)'
    libc = ctypes.CDLL('libc.so.6')
    if not (libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) and libc.mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)):
        return 'allocator: glibc refused the thresholds; left as it is'
    return (f'allocator: blocks up to {MMAP_THRESHOLD >> 20} MiB reused from the heap, up to '
            f'{TRIM_THRESHOLD >> 20} MiB of free memory kept (set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ to '
            'choose otherwise)')
