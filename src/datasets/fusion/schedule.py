"""Which record of which source fills each position of an epoch: the one function online and offline fusion share.

Each epoch draws from ``numpy.random.default_rng([seed, epoch])``: a source with quota q over n records contributes
every record ``q // n`` times plus ``q % n`` distinct records drawn without replacement, then all samples are shuffled
together. Counts per source are therefore exact, and the same (sizes, quotas, seed, epoch) always gives the same order.
"""
from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ...config.fusion import FusionConfig

BYTES_PER_SAMPLE = 40
"""Peak memory of a schedule per sample: the int32 source and int64 record ids, the int64 permutation, and the
concatenated copies made while shuffling."""


def epoch_quotas(fusion: 'FusionConfig', sizes: list[int], say: bool = True) -> list[int]:
    """The samples per epoch of each source of ``fusion`` (``sizes``: their record counts), checked: ``ConfigError``
    for a source left out by rounding, an empty epoch or a schedule too large for memory; sources drawn many times
    over are said (to stderr) when ``say``. The online and the offline mixture both plan their epoch here."""
    from ...config import ConfigError

    names = [s.name for s in fusion.sources]
    quotas = [s.quota(size) for s, size in zip(fusion.sources, sizes)]
    problems, notes = quota_problems(names, sizes, quotas, [s.asked for s in fusion.sources], fusion.origin)
    if (problem := schedule_memory_problem(names, quotas, fusion.origin)) is not None:
        problems.append(problem)
    if problems:
        raise ConfigError(problems)
    for note in notes if say else ():
        print(note, file=sys.stderr, flush=True)
    return quotas


def quota_problems(names: list[str], sizes: list[int], quotas: list[int], asked: list[bool],
                   origin: str) -> tuple[list[str], list[str]]:
    """(problems, notes) of the samples per epoch each source gets from its record count: a source asked for samples
    whose ratio rounds to none would be left out without a word (and all of them: an empty epoch that "trains" 0
    steps); a source drawn many times over says so."""
    problems, notes = [], []
    for name, size, quota, wanted in zip(names, sizes, quotas, asked):
        if wanted and quota == 0:
            problems.append(f'{origin}: source `{name}`: its ratio of {size:,} record(s) rounds to 0 samples per '
                            f'epoch, so it would not be in the mixture; raise the ratio (above {0.5 / size:.3g}; with '
                            '`custom.sample_limit`, of the records it keeps), give a `count`, or remove the source')
        elif quota > size:
            notes.append(f'fusion: source `{name}`: {quota:,} samples per epoch from {size:,} record(s), each about '
                         f'{quota / size:.3g} times')
    if not problems and not sum(quotas):
        problems.append(f'{origin}: every source rounds to 0 samples per epoch; the mixture would be empty')
    return problems, notes


def schedule_memory_problem(names: list[str], quotas: list[int], origin: str) -> str | None:
    """Why an epoch of ``quotas`` samples cannot be scheduled in this machine's memory (naming the sources that ask
    for the most), or None."""
    total = sum(quotas)
    try:
        memory = os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES')
    except (ValueError, OSError, AttributeError):  # not a POSIX system: nothing to compare with
        return None
    if total * BYTES_PER_SAMPLE <= memory // 2:
        return None
    largest = sorted(zip(quotas, names), reverse=True)[:3]
    listed = ', '.join(f'`{name}` {quota:,}' for quota, name in largest)
    return (f'{origin}: one epoch would hold {total:,} samples ({listed}); its schedule alone needs about '
            f'{total * BYTES_PER_SAMPLE / 2**30:.0f} GiB, more than half of this machine\'s '
            f'{memory / 2**30:.0f} GiB. Lower the sources\' `count` (or `ratio`)')


def epoch_schedule(sizes: list[int], quotas: list[int], seed: int, epoch: int) -> tuple[np.ndarray, np.ndarray]:
    """(source index, record index) of every sample of epoch ``epoch``, in training order."""
    rng = np.random.default_rng([seed, epoch])
    source_ids, record_ids = [], []
    for source, (size, quota) in enumerate(zip(sizes, quotas)):
        full, rest = divmod(quota, size)
        picks = np.concatenate([np.tile(np.arange(size, dtype=np.int64), full),
                                np.sort(rng.choice(size, rest, replace=False)).astype(np.int64)])
        source_ids.append(np.full(len(picks), source, dtype=np.int32))
        record_ids.append(picks)
    order = rng.permutation(sum(quotas))
    return np.concatenate(source_ids)[order], np.concatenate(record_ids)[order]
