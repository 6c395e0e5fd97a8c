"""Post-training (GRPO, GKD) through ms-swift's RLHF pipeline, with the project's datasets.

``ProjectSft``'s dataset preparation on top of ms-swift's ``SwiftRLHF`` (teacher / reference model loading, LoRA
preparation, the trainer). Rows go to the trainer unencoded (``RolloutDataset``): GRPO and GKD encode prompt and
completion themselves.
"""
from __future__ import annotations

from swift.pipelines.train.rlhf import SwiftRLHF

from ..datasets.rollout import RolloutDataset
from ..rewards import register
from ..swift_seams import project_run, template_limits
from .gkd import ProjectGKDTrainer
from .grpo import ProjectGRPOTrainer
from .sft_pipeline import ProjectSft

TRAINERS = {'grpo': ProjectGRPOTrainer, 'gkd': ProjectGKDTrainer}


class ProjectRlhf(ProjectSft, SwiftRLHF):
    """``SwiftRLHF`` reading the config's records (one JSONL or a fusion) for `rlhf.rlhf_type` grpo / gkd."""

    def _build_datasets(self, encode_check: bool | str | None = None):
        # The check encodes prompt + reference answer. It must raise, not truncate, and when the trainer generates
        # (GRPO; GKD with lmbda > 0 or seq_kd) it leaves room for the longest completion, so that nothing is cut.
        args, template = self.args, self.template
        generates = args.rlhf_type == 'grpo' or args.lmbda > 0 or args.seq_kd
        max_length = template.max_length - args.max_completion_length if generates else template.max_length
        with template_limits(template, truncation_strategy='raise', max_length=max_length):
            train, val = super()._build_datasets(encode_check)
        return [RolloutDataset(train), RolloutDataset(val) if val is not None else None]

    def _debug_samples(self, train, size: int) -> tuple[list[dict], list[str]]:
        """The rows encoded as the trainer encodes them: GKD trains on prompt + reference answer (with `lmbda` > 0 some
        batches on the student's own samples instead); GRPO encodes the prompt, samples `num_generations`
        completions for it and computes the loss on those, scored against the reference answer."""
        rows = [train.inputs(i) for i in range(size)]
        if self.args.rlhf_type == 'gkd':
            notes = [f'GKD: the batch is prompt + reference answer; the teacher scores the same tokens (lmbda '
                     f'{self.args.lmbda}: that share of batches uses the student\'s own samples instead)']
            return [self.template.encode(row) for row in rows], notes
        notes = [f'GRPO: the batch is the prompts; {self.args.num_generations} completions are sampled per prompt, '
                 'scored by the reward functions against the reference answer, and carry the loss']
        notes += [f'  reference answer {i}: {row["messages"][-1]["content"]!r:.200}' for i, row in enumerate(rows)]
        return [self.template.encode({**row, 'messages': row['messages'][:-1]}) for row in rows], notes

    def _get_trainer_kwargs(self):
        kwargs = super()._get_trainer_kwargs()
        if self.args.rlhf_type == 'gkd':
            kwargs['gkd'] = self.cfg.gkd
        else:
            kwargs['seeded_rollouts'] = self.cfg.settings.seeded_rollouts
        return kwargs

    def run(self):
        register()
        with project_run(self.args.rlhf_type, TRAINERS[self.args.rlhf_type]):
            return super().run()
