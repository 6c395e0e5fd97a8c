"""Post-training (GRPO, GKD) through ms-swift's RLHF pipeline, with the project's datasets.

``ProjectSft``'s dataset preparation on top of ms-swift's ``SwiftRLHF`` (teacher / reference model loading, LoRA
preparation, the trainer). Rows go to the trainer unencoded (``RolloutDataset``): GRPO and GKD encode prompt and
completion themselves.
"""
from __future__ import annotations

from swift.pipelines.train.rlhf import SwiftRLHF

from ..datasets.rollout import RolloutDataset
from ..rewards import register
from .gkd import ProjectGKDTrainer
from .grpo import ProjectGRPOTrainer
from .sft_pipeline import ProjectSft
from .swift_seams import project_run

TRAINERS = {'grpo': ProjectGRPOTrainer, 'gkd': ProjectGKDTrainer}


class ProjectRlhf(ProjectSft, SwiftRLHF):
    """``SwiftRLHF`` reading the config's records (one JSONL or a fusion) for `rlhf.rlhf_type` grpo / gkd."""

    def _build_datasets(self, encode_check: bool | None = None):
        # The check encodes prompt + reference answer. It must raise, not truncate, and when the trainer generates
        # (GRPO; GKD with lmbda > 0 or seq_kd) it leaves room for the longest completion, so that nothing is cut.
        args, template = self.args, self.template
        generates = args.rlhf_type == 'grpo' or args.lmbda > 0 or args.seq_kd
        limits = template.truncation_strategy, template.max_length
        template.truncation_strategy = 'raise'
        if generates:
            template.max_length = limits[1] - args.max_completion_length
        try:
            train, val = super()._build_datasets(encode_check)
        finally:
            template.truncation_strategy, template.max_length = limits
        return [RolloutDataset(train), RolloutDataset(val) if val is not None else None]

    def run(self):
        register()
        # The project's knobs travel on the argument objects, where the trainer (and any tool) reads them.
        for key, value in self.cfg.project_rlhf_settings().items():
            setattr(self.args, key, value)
            setattr(self.args.training_args, key, value)
        with project_run(self.args.rlhf_type, TRAINERS[self.args.rlhf_type]):
            return super().run()
