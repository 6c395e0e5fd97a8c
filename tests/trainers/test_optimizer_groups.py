"""Per-component learning rates and the min-LR cosine schedule, on a real ms-swift trainer and the tiny model."""
import math
from pathlib import Path

import pytest

from src.config import load_and_validate
from src.trainers.sft_pipeline import ProjectSft
from src.trainers.swift_args import to_sft_arguments

pytestmark = pytest.mark.slow  # trains or runs a command end to end

VIT_LR, ALIGNER_LR, LLM_LR, MIN_LR, WARMUP, STEPS = 1e-3, 2e-3, 4e-3, 4e-4, 2, 6


def test_vit_aligner_llm_groups_follow_the_min_lr_cosine_schedule(make_config, tmp_path: Path):
    config = make_config('full.yaml', name='groups',
                         tuner={'freeze_vit': False, 'freeze_aligner': False, 'freeze_llm': False},
                         training={'vit_lr': VIT_LR, 'aligner_lr': ALIGNER_LR, 'llm_lr': LLM_LR,
                                   'weight_decay': 0.1, 'lr_scheduler_type': 'cosine_warmup_with_min_lr',
                                   'lr_scheduler_kwargs': {'min_lr': MIN_LR}, 'warmup_steps': WARMUP,
                                   'max_steps': STEPS, 'save_steps': STEPS, 'eval_steps': STEPS})
    cfg = load_and_validate(config)
    pipeline = ProjectSft(to_sft_arguments(cfg), cfg)
    pipeline.main()
    trainer = pipeline.trainer
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    groups = trainer.optimizer.param_groups
    by_lr = {}
    for group in groups:
        for param in group['params']:
            by_lr.setdefault(group['initial_lr'], set()).add(names[id(param)])
    vit, aligner, llm = by_lr[VIT_LR], by_lr[ALIGNER_LR], by_lr[LLM_LR]
    assert vit and all(n.startswith('model.visual.') and 'merger' not in n for n in vit)
    assert any('deepstack_merger_list' in n for n in aligner) and all('merger' in n for n in aligner)
    assert any(n.startswith('model.language_model.') for n in llm) and not any('visual' in n for n in llm)
    no_decay = {names[id(p)] for g in groups if g['weight_decay'] == 0.0 for p in g['params']}
    assert all(n.endswith('.bias') or 'norm' in n for n in no_decay), 'no decay only on norms and biases'
    assert any('norm' in n for n in no_decay)

    min_rate = MIN_LR / LLM_LR  # transformers scales min_lr by the optimizer's default (LLM) learning rate

    def closed_form(step: int) -> float:
        # transformers' cosine_warmup_with_min_lr, which counts the step being taken: (s + 1) / warmup, then
        # cosine from 1 down to min_rate over the remaining steps.
        if step < WARMUP:
            return (step + 1) / WARMUP
        progress = (step - WARMUP + 1) / (STEPS - WARMUP)
        return min_rate + (1 - min_rate) * 0.5 * (1 + math.cos(math.pi * progress))

    for step in range(STEPS):
        for group, lr_lambda in zip(groups, trainer.lr_scheduler.lr_lambdas, strict=True):
            assert math.isclose(lr_lambda(step), closed_form(step), rel_tol=1e-12)
    assert math.isclose(closed_form(STEPS - 1), min_rate)
    for group in groups:  # after the last step the scheduler has moved on to the value for step STEPS
        assert math.isclose(group['lr'], group['initial_lr'] * closed_form(STEPS), rel_tol=1e-6)
