"""Which record of which source fills each position of an epoch: the one function online and offline fusion share.

Each epoch draws from ``numpy.random.default_rng([seed, epoch])``: a source with quota q over n records contributes
every record ``q // n`` times plus ``q % n`` distinct records drawn without replacement, then all samples are shuffled
together. Counts per source are therefore exact, and the same (sizes, quotas, seed, epoch) always gives the same order.
"""
from __future__ import annotations

import numpy as np


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
