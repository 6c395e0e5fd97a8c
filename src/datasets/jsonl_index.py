"""``JsonlIndex``: where each record of a JSONL file starts, kept as numpy arrays, read back with ``os.pread``.

Multi-million-record files are the norm for fused training sets. A Python list of (offset, line) tuples costs about
110 bytes per record; two int64 arrays cost 16, and ``os.pread`` reads one line without a shared file position, so
dataloader workers and the offline mixture writer can read from the same index concurrently.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

CHUNK = 1 << 24  # bytes read per step while indexing


class JsonlIndex:
    """Byte offset, length and 1-based line number of every non-blank line of ``path``, up to ``limit`` lines."""

    def __init__(self, path: str | Path, limit: int | None = None):
        self.path = Path(path)
        starts, ends = _line_spans(self.path)
        line_numbers = np.arange(1, len(starts) + 1, dtype=np.int64)
        keep = ends - starts > 0
        short = np.flatnonzero(keep & (ends - starts < 16))
        if len(short):  # whitespace-only lines are rare and short; look at the short ones only
            with open(self.path, 'rb') as f:
                for i in short:
                    f.seek(starts[i])
                    keep[i] = bool(f.read(ends[i] - starts[i]).strip())
        self.offsets = starts[keep][:limit]
        self.lengths = (ends - starts)[keep][:limit]
        self.line_numbers = line_numbers[keep][:limit]

    def __len__(self) -> int:
        return len(self.offsets)

    def line_number(self, idx: int) -> int:
        return int(self.line_numbers[idx])

    def read(self, idx: int) -> bytes:
        """The bytes of record ``idx``, without its line break."""
        fd = os.open(self.path, os.O_RDONLY)
        try:
            return self.read_from(fd, idx)
        finally:
            os.close(fd)

    def read_from(self, fd: int, idx: int) -> bytes:
        """Like ``read`` on a descriptor the caller keeps open (the mixture writer reads millions of lines)."""
        return os.pread(fd, int(self.lengths[idx]), int(self.offsets[idx]))


def _line_spans(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """(start, end) byte offsets of every line, the end excluding ``\\n`` / ``\\r\\n``."""
    starts: list[np.ndarray] = [np.zeros(1, dtype=np.int64)]
    ends: list[np.ndarray] = []
    size = 0
    with open(path, 'rb') as f:
        while chunk := f.read(CHUNK):
            newlines = np.flatnonzero(np.frombuffer(chunk, dtype=np.uint8) == 10).astype(np.int64) + size
            ends.append(newlines)
            starts.append(newlines + 1)
            size += len(chunk)
    start = np.concatenate(starts)
    end = np.concatenate(ends + [np.array([size], dtype=np.int64)])
    if start[-1] == size:  # the file ends with a line break (or is empty): no last partial line
        start, end = start[:-1], end[:-1]
    if len(end):  # drop the `\r` of Windows line breaks
        data = np.memmap(path, dtype=np.uint8, mode='r')
        end = end - ((end > start) & (data[np.maximum(end - 1, 0)] == 13))
        del data
    return start, end
