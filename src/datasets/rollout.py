"""Rows for ms-swift's on-policy trainers (GRPO), which sample completions and encode them themselves.

Each row is the record's template inputs (prompt and reference answer; the trainer drops the answer before
sampling) plus ``solution``, the reference answer that ms-swift hands to every reward function, and the record's
dataset name (``DATASET_LABEL``) for per-dataset telemetry.
"""
from __future__ import annotations

from typing import Any

from torch.utils.data import Dataset

from .dense_caption import DATASET_LABEL


class RolloutDataset(Dataset):
    """Wraps a ``DenseCaptionDataset`` or ``FusionDataset``: same records and order, rows instead of token ids."""

    def __init__(self, dataset: Any):
        self.dataset = dataset

    @property
    def epoch(self) -> int:
        return self.dataset.epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self.dataset.epoch = epoch

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        inputs = self.dataset.inputs(idx)
        row = {**inputs, 'solution': inputs['messages'][-1]['content']}
        label = self.dataset.label_of(idx)
        if label:
            row[DATASET_LABEL] = label
        return row

    def inputs(self, idx: int) -> dict[str, Any]:
        """The template inputs of ``idx`` (prompt and reference answer)."""
        return self.dataset.inputs(idx)

    def record_files(self) -> list[Any]:
        """The files of records behind the rows (``record_check.check_datasets``)."""
        return self.dataset.record_files()
