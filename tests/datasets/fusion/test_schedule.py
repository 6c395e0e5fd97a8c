"""epoch_schedule: exact per-source counts, deterministic per (seed, epoch), different across epochs."""
from __future__ import annotations

import numpy as np

from src.datasets.fusion import epoch_schedule


def test_counts_are_exact_and_records_distinct_within_a_partial_pass():
    sources, records = epoch_schedule([10, 4, 7], [25, 2, 0], seed=1, epoch=0)
    assert np.bincount(sources, minlength=3).tolist() == [25, 2, 0]
    first = records[sources == 0]
    assert np.bincount(first, minlength=10).min() == 2  # 2 full passes + 5 distinct extras
    assert len(set(records[sources == 1].tolist())) == 2


def test_same_seed_and_epoch_same_order_other_epoch_differs():
    a = epoch_schedule([100, 50], [60, 50], seed=5, epoch=3)
    b = epoch_schedule([100, 50], [60, 50], seed=5, epoch=3)
    c = epoch_schedule([100, 50], [60, 50], seed=5, epoch=4)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not np.array_equal(a[1], c[1])
