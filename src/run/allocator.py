"""Keep freed memory in the process, so the data path does not page-fault through every image it builds (unless the
weights are sharded over CPU processes, below).

glibc serves an allocation above its mmap threshold (at most 32 MiB however it adapts) with a fresh ``mmap`` and
unmaps it on free; the next one page-faults its way through new zeroed pages again. The data path allocates such
blocks for every image and batch (a batch of four 1024x768 images is 75 MiB of float32 rows in ms-swift's layout), so
with the defaults much of a DataLoader's CPU time went to the kernel; training on a CPU pays the same in the logits
over a 152k vocabulary. With the thresholds raised, freed blocks are reused from the heap. The measured effect on
the data path and on a CPU training step is in docs/performance.md (``benchmarks/data_throughput.py``).

Applied by ``python -m src.sft`` and ``python -m src.eval`` at start (DataLoader workers are forked and inherit it).
The environment wins: with ``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` set (glibc's own variables) or
on a C library other than glibc, nothing is changed.

The cost: with blocks up to 512 MiB on the heap, a block freed below a live one stays in the process (the trim
threshold only governs the top of the heap). On a CPU the model's weights are such blocks: preparing the model frees
a whole copy of them (FSDP2 shards them; on a GPU node the copy loaded before the move to the device), and
``return_freed_memory`` hands that back once the model is prepared and after each save (``src/trainers/callbacks.py``).
A run whose weights are sharded over CPU processes (ZeRO-3, FSDP2) also gathers and frees every layer in each step,
and there freed blocks are handed back at once (``tune_allocator(sharded_on_cpus=...)``); the figures are in
docs/training/scale.md.
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
HAND_BACK_THRESHOLD = 128 << 10
"""With the weights sharded over CPU processes: blocks above 128 KiB are mapped and unmapped on free, and free
memory above 128 KiB at the top of the heap is trimmed (glibc's starting values, held fixed: left alone, glibc raises
its mmap threshold to the size of each mapped block freed, up to 32 MiB, so a layer's weights land on the heap)."""
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
ENV_VARIABLES = ('MALLOC_MMAP_THRESHOLD_', 'MALLOC_TRIM_THRESHOLD_')


def tune_allocator(sharded_on_cpus: str | None = None) -> str:
    """Set glibc's mmap and trim thresholds for this process; returns what was done, for the log.

    Freed blocks are kept for reuse, unless ``sharded_on_cpus`` names the key that shards the weights over
    processes computing on CPUs: such a process gathers and frees every layer's weights in each forward and
    backward, and with freed blocks kept it held three to four times the memory (docs/training/scale.md), while the
    sharding was chosen to save memory. There freed blocks are handed back at once. On GPUs the weights are not on
    the heap, and the blocks are kept."""
    chosen = [name for name in ENV_VARIABLES if name in os.environ]
    if chosen:
        return f'allocator: left as the environment sets it ({", ".join(chosen)})'
    if platform.libc_ver()[0] != 'glibc':
        return 'allocator: left as it is (not glibc)'
    mmap, trim = (HAND_BACK_THRESHOLD, HAND_BACK_THRESHOLD) if sharded_on_cpus else (MMAP_THRESHOLD, TRIM_THRESHOLD)
    libc = ctypes.CDLL('libc.so.6')
    if not (libc.mallopt(_M_MMAP_THRESHOLD, mmap) and libc.mallopt(_M_TRIM_THRESHOLD, trim)):
        return 'allocator: glibc refused the thresholds; left as it is'
    override = 'set MALLOC_MMAP_THRESHOLD_ / MALLOC_TRIM_THRESHOLD_ to choose otherwise'
    if sharded_on_cpus:
        return (f'allocator: blocks above {mmap >> 10} KiB handed back when freed ({sharded_on_cpus} shards the '
                f'weights over CPU processes, which held 3-4x the memory with freed blocks kept; {override})')
    return (f'allocator: blocks up to {mmap >> 20} MiB reused from the heap, up to {trim >> 20} MiB of free memory '
            f'kept ({override})')


def return_freed_memory() -> None:
    """Hand the free memory of every glibc arena back to the system (``malloc_trim(0)``), whatever the thresholds.

    Called where a whole copy of the weights has just been freed (the model prepared for training, a checkpoint
    written), so that the copy does not stay resident beside the weights in use for the rest of the run."""
    if platform.libc_ver()[0] == 'glibc':
        ctypes.CDLL('libc.so.6').malloc_trim(0)
