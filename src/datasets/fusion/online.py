"""Online fusion: a training set that mixes several sources and redraws the mixture every epoch.

The trainer sets ``epoch`` at each epoch start (``DatasetEpochCallback``); the schedule of that epoch is drawn from
the fusion seed, so a run and its resumption see the same samples, and epoch 0 is exactly the file the offline builder
(``scripts/fuse_datasets.py``) writes for the same config. Every sample carries its source name for telemetry.
"""
from __future__ import annotations

import bisect
import dataclasses
import os
from typing import TYPE_CHECKING, Any

from torch.utils.data import ConcatDataset, Dataset

from ...config.augmentation import AugmentationSpec
from ...config.fusion import KEEP_AUGMENTATION, FusionConfig, FusionSource
from ..augmentation import Augmenter, augmenter_for
from ..builders import BuildSettings
from ..dense_caption import DenseCaptionDataset
from .schedule import epoch_quotas, epoch_schedule

if TYPE_CHECKING:
    from swift.template import Template


class FusionDataset(Dataset):
    """The training mixture of a ``FusionConfig``: ``sum(quotas)`` samples per epoch, redrawn each epoch."""

    def __init__(self, fusion: FusionConfig, template: 'Template', settings: BuildSettings,
                 augmentation: AugmentationSpec | None = None, sample_limit: int | None = None):
        self.fusion = fusion
        self.sources = [
            DenseCaptionDataset(s.train_jsonl, template, sample_limit, source_settings(settings, s),
                                source_augmenter(augmentation, s), seed=fusion.seed, label=s.name)
            for s in fusion.sources
        ]
        self.quotas = epoch_quotas(fusion, [len(d) for d in self.sources],
                                   say=int(os.environ.get('RANK', '0')) == 0)
        self.epoch = 0

    @property
    def epoch(self) -> int:
        return self._epoch

    @epoch.setter
    def epoch(self, epoch: int) -> None:
        self._epoch = epoch
        for dataset in self.sources:
            dataset.epoch = epoch
        self._source_ids, self._record_ids = epoch_schedule([len(d) for d in self.sources], self.quotas,
                                                            self.fusion.seed, epoch)

    def __len__(self) -> int:
        return len(self._source_ids)

    def __getitem__(self, idx: int) -> dict[str, Any]:
        return self.sources[self._source_ids[idx]].encode(int(self._record_ids[idx]), draw=idx)

    def inputs(self, idx: int) -> dict[str, Any]:
        """The template inputs of position ``idx`` of the current epoch (for trainers that encode themselves)."""
        return self.sources[self._source_ids[idx]].inputs(int(self._record_ids[idx]), draw=idx)

    def label_of(self, idx: int) -> str:
        """The source name of position ``idx`` of the current epoch."""
        return self.sources[self._source_ids[idx]].label

    def where(self, idx: int) -> str:
        """``file:line`` of the record at position ``idx`` of the current epoch."""
        return self.sources[self._source_ids[idx]].where(int(self._record_ids[idx]))

    def counts(self) -> dict[str, int]:
        """Samples per source in one epoch."""
        return {s.name: q for s, q in zip(self.fusion.sources, self.quotas)}

    def record_files(self) -> list[DenseCaptionDataset]:
        """Every source's training file (``record_check.check_datasets`` checks each record once)."""
        return list(self.sources)


class FusionEvalDataset(ConcatDataset):
    """The validation records of the evaluated sources (``eval_sources``), each once, without augmentation."""

    def __init__(self, fusion: FusionConfig, template: 'Template', settings: BuildSettings,
                 sample_limit: int | None = None):
        by_name = {s.name: s for s in fusion.sources}
        super().__init__([
            DenseCaptionDataset(by_name[name].val_jsonl, template, sample_limit,
                                source_settings(settings, by_name[name]), label=name) for name in fusion.eval_sources
        ])

    def inputs(self, idx: int) -> dict[str, Any]:
        dataset, local = self._locate(idx)
        return dataset.inputs(local)

    def label_of(self, idx: int) -> str:
        return self._locate(idx)[0].label

    def _locate(self, idx: int) -> tuple[DenseCaptionDataset, int]:
        """The source dataset of ``idx`` and its index there."""
        source = bisect.bisect_right(self.cumulative_sizes, idx)
        return self.datasets[source], idx - (self.cumulative_sizes[source - 1] if source else 0)

    def record_files(self) -> list[DenseCaptionDataset]:
        return list(self.datasets)


def source_settings(settings: BuildSettings, source: FusionSource) -> BuildSettings:
    """The run's build settings with the source's prompts over ``custom.prompts``."""
    return dataclasses.replace(settings, prompts={**settings.prompts, **source.prompts})


def source_augmenter(augmentation: AugmentationSpec | None, source: FusionSource) -> Augmenter | None:
    """The source's own augmentation when it sets one (null turns it off), else the run's ``custom.augmentation``."""
    return augmenter_for(augmentation if source.augmentation is KEEP_AUGMENTATION else source.augmentation)
