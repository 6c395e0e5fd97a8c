"""GRPO post-training through ms-swift's RLHF pipeline, with the project's datasets and summary rewards.

The pipeline is ``ProjectSft``'s dataset preparation on top of ms-swift's ``SwiftRLHF`` (reference / reward model
loading, LoRA preparation, ``GRPOTrainer``); rows go to the trainer unencoded, because GRPO samples completions and
encodes prompt + completion itself.
"""
from __future__ import annotations

from swift.pipelines.train.rlhf import SwiftRLHF
from swift.rlhf_trainers import GRPOTrainer

from ..datasets.rollout import RolloutDataset
from ..rewards import register
from .sft_pipeline import ProjectSft, _trainer_class


class ProjectGRPOTrainer(GRPOTrainer):
    """ms-swift's ``GRPOTrainer`` that never swaps a record for another one.

    With ``truncation_strategy: raise``, ms-swift replaces a prompt that fails to encode with a random other record.
    Here every record was encoded once before training (``custom.encode_check``), so a failure left is an error that
    should surface, not a silent change of the training data.
    """

    def resample_encode_failed_inputs(self, inputs, *args, **kwargs):
        return inputs


class ProjectGrpo(ProjectSft, SwiftRLHF):
    """``SwiftRLHF`` for `rlhf_type: grpo` reading the config's records (one JSONL or a fusion)."""

    def _prepare_dataset(self, encode_check: bool | None = None):
        # The check encodes prompt + reference answer; it must raise (not truncate) and leave room for the longest
        # completion, so that the trainer's `left` truncation never cuts a prompt.
        template = self.template
        limits = template.truncation_strategy, template.max_length
        template.truncation_strategy = 'raise'
        template.max_length = limits[1] - self.args.max_completion_length
        try:
            train, val = super()._prepare_dataset(encode_check)
        finally:
            template.truncation_strategy, template.max_length = limits
        return [RolloutDataset(train), RolloutDataset(val) if val is not None else None]

    def run(self):
        register()
        with _trainer_class('grpo', ProjectGRPOTrainer):
            return super().run()
