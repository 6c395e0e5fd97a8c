"""ms-swift's ``GRPOTrainer`` for the summary task, without its silent record swap, with per-dataset rewards and
optional seeded rollouts.

**Seeded rollouts** (`rlhf.seeded_rollouts: true`). ms-swift seeds every process differently and samples a batch of
prompts from one random stream, so which completions a step trains on depends on how the global batch is split
over processes and accumulation. With seeded rollouts each completion is sampled from its own seed, drawn from
(`training.seed`, the optimizer step, train or eval, the sample's position in the global generation batch): 1 process
x batch 4, 2 x 2 and 1 x 2 x accumulation 2 then sample the same completions, and since ms-swift's default
`loss_type: grpo` (like `dr_grpo` and `dapo`) weighs the global batch's sequences equally, the step is the same
(tests/test_scale_invariance.py). The price: the transformers engine generates one completion at a time instead of
a batch. vLLM rollouts are not covered (validation refuses the combination).
"""
from __future__ import annotations

import numpy as np
import torch
from accelerate.utils import gather_object
from swift.rlhf_trainers import GRPOTrainer

from ..datasets.dense_caption import DATASET_LABEL
from ..swift_seams import NoResample
from .engines import EngineMixin
from .telemetry import metric_name


def rollout_seed(seed: int, step: int, training: bool, position: int) -> int:
    """The sampling seed of the completion at ``position`` of the global generation batch of ``step``."""
    return int(np.random.SeedSequence([seed, step, int(training), position]).generate_state(1)[0])


class ProjectGRPOTrainer(EngineMixin, NoResample, GRPOTrainer):
    """ms-swift's ``GRPOTrainer`` that never swaps a record for another one.

    With ``truncation_strategy: raise``, ms-swift replaces a prompt that fails to encode with a random other record.
    Here every record was encoded once before training (``custom.encode_check``), so a failure left is an error that
    should surface, not a silent change of the training data.
    """

    def __init__(self, *args, seeded_rollouts: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.seeded_rollouts = seeded_rollouts

    def _score_completions(self, samples):
        """ms-swift's scoring, plus per-dataset telemetry: ``<source>_reward``, the mean weighted reward of the
        samples of each dataset in the (global) generation batch."""
        samples = super()._score_completions(samples)
        names = gather_object([s.extra.get(DATASET_LABEL) for s in samples])
        rewards = self._rewards_per_func  # (global samples, reward functions), in the order `gather_object` keeps
        weights = self.reward_weights.to(rewards.device)
        total = (rewards * weights.unsqueeze(0)).nansum(dim=1)
        metrics = self._metrics['train' if self.model.training else 'eval']
        for name in sorted({n for n in names if n}):
            rows = torch.tensor([i for i, n in enumerate(names) if n == name], device=total.device)
            metrics[f'{metric_name(name)}_reward'].append(total[rows].mean().item())
        return samples

    def _engine_infer(self, infer_requests, request_config=None, *, use_tqdm=False):
        if not self.seeded_rollouts or self.use_fast_infer:
            return super()._engine_infer(infer_requests, request_config, use_tqdm=use_tqdm)
        # This process holds a contiguous slice of the global generation batch (accelerate gives process r the r-th
        # batch of the sampler's stream), so a request's global position is its rank's offset plus its index.
        offset = self.accelerator.process_index * len(infer_requests)
        step, training = self.state.global_step, self.model.training
        outputs = []
        for i, request in enumerate(infer_requests):
            with torch.random.fork_rng(devices=[self.accelerator.device] if self.accelerator.device.type == 'cuda'
                                       else []):
                torch.manual_seed(rollout_seed(self.args.seed, step, training, offset + i))
                outputs += super()._engine_infer([request], request_config, use_tqdm=False)
        return outputs
