"""The offline mixture: epoch 0 of a fusion config written out as one JSONL file.

Line i of the file is position i of the online mixture's epoch 0 (same ``epoch_schedule``), so training on the file
and training with ``custom.fusion_config`` see the same samples in epoch 0. Each line is the source record with
``_fusion_source`` set and relative media paths rewritten to stay valid from the output's directory.

Memory holds the line offsets of the sources and the schedule (about 30 bytes per sample), never the records: the
records are read one at a time with ``os.pread`` and written in order. With ``workers > 1`` contiguous chunks of the
schedule are converted in parallel into part files that are appended in order, so the output is byte-identical
whatever the number of workers.
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from ...config import ConfigError
from ...config.fusion import FusionConfig
from ..contract import RecordError, media_slots, parse_line
from ..jsonl_index import JsonlIndex
from .schedule import epoch_quotas, epoch_schedule

CHUNK_SAMPLES = 20_000  # samples per unit of work (and per progress-bar update)


@dataclass
class _Source:
    name: str
    index: JsonlIndex


def _rebase(value: Any, source_dir: str, out_dir: str) -> Any:
    """A media path relative to ``source_dir`` made relative to ``out_dir``; URLs, data, absolute paths unchanged."""
    if not isinstance(value, str) or value.startswith(('http://', 'https://', 'data:')) or os.path.isabs(value):
        return value
    return os.path.relpath(os.path.join(source_dir, value), out_dir)


def mixture_line(line: bytes, name: str, source_dir: str, out_dir: str, where: str) -> bytes:
    """One output line: the record tagged with its source, its media paths valid from ``out_dir``."""
    record = parse_line(line, where)
    if not isinstance(record, dict):
        raise RecordError(f'{where}: a record must be a JSON object')
    for slot in media_slots(record):
        if (rebased := _rebase(slot.value, source_dir, out_dir)) != slot.value:
            slot.set(rebased)
    record['_fusion_source'] = name
    return json.dumps(record, ensure_ascii=False).encode() + b'\n'


_SOURCES: list[_Source] = []
"""The sources being written; set before the worker processes fork, so each chunk pickles only its schedule."""


def _write_chunk(job: tuple[np.ndarray, np.ndarray, str, str]) -> str:
    """Write the samples of one chunk to a part file; returns its path."""
    source_ids, record_ids, out_dir, part_dir = job
    sources = _SOURCES
    fds = [os.open(s.index.path, os.O_RDONLY) for s in sources]
    source_dirs = [str(s.index.path.parent.resolve()) for s in sources]
    try:
        with tempfile.NamedTemporaryFile('wb', dir=part_dir, delete=False, suffix='.part') as part:
            for s, r in zip(source_ids.tolist(), record_ids.tolist()):
                source = sources[s]
                where = f'{source.index.path}:{source.index.line_number(r)}'
                part.write(mixture_line(source.index.read_from(fds[s], r), source.name, source_dirs[s], out_dir,
                                        where))
            return part.name
    finally:
        for fd in fds:
            os.close(fd)


def write_mixture(fusion: FusionConfig, out: str | Path, workers: int = 1, progress: bool = True) -> dict[str, int]:
    """Write epoch 0 of ``fusion`` to ``out``; returns the samples written per source."""
    fusion.check_files()
    out = Path(out).resolve()
    inputs = [Path(path) for spec in fusion.sources for path in (spec.train_jsonl, spec.val_jsonl) if path]
    if out.suffix != '.jsonl' or any(out == path.resolve() for path in inputs):
        what = ('the mixture is JSON Lines; name it *.jsonl' if out.suffix != '.jsonl' else
                'it is a source of the mixture; write the mixture somewhere else')
        raise ConfigError([f'--out {out}: {what} (nothing was written)'])
    out.parent.mkdir(parents=True, exist_ok=True)
    sources = [_Source(s.name, JsonlIndex(s.train_jsonl)) for s in fusion.sources]
    _SOURCES[:] = sources
    for spec, source in zip(fusion.sources, sources):
        if not len(source.index):
            raise RecordError(f'{spec.train_jsonl}: no records (source `{spec.name}`)')
    quotas = epoch_quotas(fusion, [len(s.index) for s in sources])
    source_ids, record_ids = epoch_schedule([len(s.index) for s in sources], quotas, fusion.seed, epoch=0)
    bounds = list(range(0, len(source_ids), CHUNK_SAMPLES)) + [len(source_ids)]
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f'.{out.name}.') as part_dir:
        jobs = [(source_ids[a:b], record_ids[a:b], str(out.parent), part_dir)
                for a, b in zip(bounds[:-1], bounds[1:])]
        tmp = Path(part_dir) / out.name
        with open(tmp, 'wb') as sink, tqdm(total=len(source_ids), desc=f'writing {out.name}', unit='rec',
                                           disable=not progress) as bar:
            pool = multiprocessing.get_context('fork').Pool(workers) if workers > 1 else None
            try:
                parts = pool.imap(_write_chunk, jobs) if pool else map(_write_chunk, jobs)
                for job, part in zip(jobs, parts):
                    with open(part, 'rb') as f:
                        shutil.copyfileobj(f, sink)
                    os.unlink(part)
                    bar.update(len(job[0]))
            finally:
                if pool:
                    pool.terminate()
        os.replace(tmp, out)
    return {spec.name: quota for spec, quota in zip(fusion.sources, quotas)}
