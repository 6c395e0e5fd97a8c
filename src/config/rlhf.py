"""Checks and defaults for post-training (`rlhf.rlhf_type`), run with the rest of validation, before any model loads.

GRPO here is the summary task's post-training: the reference answer of each record is its `summary`, scored by the
project's reward functions (src/rewards). GKD is not available yet.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from ..rewards.summary import REWARDS

if TYPE_CHECKING:
    from .validate import ProjectConfig

SUPPORTED = ('grpo', )
# Where the project's GRPO default departs from ms-swift's (temperature 0.9, 512 tokens), and why: a summary is a
# fixed format, so sampling stays close to greedy, and a dense scene's summary can be long.
GRPO_DEFAULTS = {('training', 'temperature'): 0.3, ('rlhf', 'max_completion_length'): 2048}


def check_rlhf(cfg: 'ProjectConfig', where: Callable[[tuple[str, ...]], str], errors: list[str]) -> None:
    """Validate the `rlhf` section for the chosen `rlhf_type` and fill the project's defaults."""
    rlhf_type = cfg.rlhf.get('rlhf_type')
    if rlhf_type is None:
        if cfg.rlhf:
            errors.append(f'{where(("rlhf", next(iter(cfg.rlhf))))}: the `rlhf` section applies to post-training '
                          f'only; set `rlhf.rlhf_type` ({", ".join(SUPPORTED)}) or remove the section')
        return
    if rlhf_type not in SUPPORTED:
        errors.append(f'{where(("rlhf", "rlhf_type"))}: {rlhf_type!r} is not available in this version; supported: '
                      f'{", ".join(SUPPORTED)}')
        return
    for (section, key), value in GRPO_DEFAULTS.items():
        getattr(cfg, section).setdefault(key, value)
    _check_grpo(cfg, where, errors)


def _check_grpo(cfg: 'ProjectConfig', where: Callable[[tuple[str, ...]], str], errors: list[str]) -> None:
    from .validate import world_size

    rlhf, training = cfg.rlhf, cfg.training
    if cfg.custom.mode != 'summary':
        errors.append(f'{where(("custom", "mode"))}: GRPO scores summaries against each record\'s `summary`; set '
                      '`custom.mode: summary`')
    funcs = rlhf.get('reward_funcs') or []
    if not funcs:
        errors.append(f'{where(("rlhf", "rlhf_type"))}: GRPO needs `rlhf.reward_funcs`, e.g. [summary_format, '
                      f'summary_content_f1]; available: {", ".join(REWARDS)}')
    for name in funcs:
        if name not in REWARDS:
            errors.append(f'{where(("rlhf", "reward_funcs"))}: unknown reward {name!r}; available: '
                          f'{", ".join(REWARDS)}')
    weights = rlhf.get('reward_weights')
    if weights is not None and len(weights) != len(funcs):
        errors.append(f'{where(("rlhf", "reward_weights"))}: {len(weights)} weights for {len(funcs)} reward '
                      'functions; give one weight per function')
    # ms-swift's GRPO takes only `left` (or `delete`, which drops records silently). Nothing is cut in practice:
    # before training every prompt + reference answer is checked to fit with room for `max_completion_length`.
    truncation = cfg.template.get('truncation_strategy')
    if truncation == 'right':
        errors.append(f'{where(("template", "truncation_strategy"))}: GRPO supports only `left`; every prompt is '
                      'checked to fit before training, so nothing is truncated')
    cfg.template['truncation_strategy'] = 'left'
    micro = training.get('per_device_train_batch_size', 1)
    accumulation = training.get('gradient_accumulation_steps') or 1
    if training.get('effective_batch_size'):
        accumulation = training['effective_batch_size'] // (micro * world_size())
    generation = rlhf.get('generation_batch_size') or micro * accumulation * world_size()
    generations = rlhf.get('num_generations', 8)
    key = ('rlhf', 'generation_batch_size' if rlhf.get('generation_batch_size') else 'num_generations')
    if generations < 2:
        errors.append(f'{where(("rlhf", "num_generations"))}: GRPO compares completions of one prompt; use at least 2')
    elif generation % generations:
        errors.append(f'{where(key)}: num_generations ({generations}) must divide the generation batch '
                      f'({generation} trajectories: `rlhf.generation_batch_size`, by default per_device_train_batch_'
                      f'size x gradient accumulation x world size)')
    if rlhf.get('generation_batch_size') and rlhf['generation_batch_size'] % (micro * world_size()):
        errors.append(f'{where(("rlhf", "generation_batch_size"))}: must be a multiple of per_device_train_batch_size '
                      f'({micro}) x world size ({world_size()})')
    if cfg.tuner.get('train_type', 'lora') == 'lora' and rlhf.get('ref_model'):
        errors.append(f'{where(("rlhf", "ref_model"))}: with LoRA the reference policy is the base model with the '
                      'adapter switched off, which costs no second model; remove `rlhf.ref_model` (or train `full`)')
