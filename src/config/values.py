"""Range and choice checks for the numbers and names the toolkit passes to ms-swift, run with validation.

ms-swift and transformers accept a negative learning rate, `lora_rank: 0` or `train_type: qlora` when the arguments
are built and fail (or, like `max_steps: 0`, quietly do something else) once the model is loaded. Here each such value
is an error before anything loads, naming the file and the key, with the closest valid name for a misspelt one.
Every number without an entry in ``BOUNDS`` is still held to ``FINITE``: NaN and infinity are refused everywhere.
"""
from __future__ import annotations

import difflib
from typing import Any

from . import swift_fields
from .bounds import (
    AT_LEAST_ONE,
    BELOW_ONE,
    COUNT,
    FINITE,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SEED,
    Bound,
    is_number,
    non_finite_paths,
)
from .types import Spec, choices

KeyPath = tuple[str, ...]


BOUNDS: dict[KeyPath, Bound] = {
    ('training', 'learning_rate'): POSITIVE,
    ('training', 'llm_lr'): POSITIVE,
    ('training', 'vit_lr'): POSITIVE,
    ('training', 'aligner_lr'): POSITIVE,
    ('training', 'per_device_train_batch_size'): AT_LEAST_ONE,
    ('training', 'per_device_eval_batch_size'): AT_LEAST_ONE,
    ('training', 'gradient_accumulation_steps'): AT_LEAST_ONE,
    ('training', 'effective_batch_size'): AT_LEAST_ONE,
    ('training', 'max_steps'): Bound(1, also=(-1, ), integer=True),  # -1: train `num_train_epochs`; 0 takes a step
    ('training', 'num_train_epochs'): POSITIVE,
    ('training', 'warmup_ratio'): PROBABILITY,
    ('training', 'warmup_steps'): NON_NEGATIVE,
    ('training', 'weight_decay'): NON_NEGATIVE,
    # clip_grad_norm_ with an infinite max_norm never clips and still reports the norm; 0 turns clipping off too.
    ('training', 'max_grad_norm'): Bound(0, unbounded=True),
    ('training', 'adam_beta1'): BELOW_ONE,
    ('training', 'adam_beta2'): BELOW_ONE,
    ('training', 'adam_epsilon'): POSITIVE,
    ('training', 'logging_steps'): POSITIVE,
    ('training', 'save_steps'): POSITIVE,
    ('training', 'eval_steps'): POSITIVE,
    ('training', 'eval_delay'): NON_NEGATIVE,
    ('training', 'save_total_limit'): AT_LEAST_ONE,
    ('training', 'dataloader_num_workers'): COUNT,
    ('training', 'dataloader_prefetch_factor'): AT_LEAST_ONE,
    ('training', 'seed'): SEED,
    ('data', 'data_seed'): SEED,
    ('training', 'temperature'): NON_NEGATIVE,
    ('training', 'top_p'): Bound(0, 1, low_inclusive=False),
    ('training', 'top_k'): COUNT,
    ('training', 'repetition_penalty'): POSITIVE,
    ('training', 'max_new_tokens'): AT_LEAST_ONE,
    ('training', 'num_beams'): AT_LEAST_ONE,
    ('training', 'label_smoothing_factor'): BELOW_ONE,
    ('training', 'neftune_noise_alpha'): NON_NEGATIVE,
    ('training', 'router_aux_loss_coef'): NON_NEGATIVE,
    ('tuner', 'lora_rank'): AT_LEAST_ONE,
    ('tuner', 'lora_alpha'): POSITIVE,
    ('tuner', 'lora_dropout'): BELOW_ONE,
    ('tuner', 'freeze_parameters_ratio'): PROBABILITY,
    ('template', 'max_pixels'): AT_LEAST_ONE,  # and at least one merged patch of the model: validate's family check
    ('template', 'max_length'): AT_LEAST_ONE,
    ('model', 'max_model_len'): AT_LEAST_ONE,
    ('data', 'split_dataset_ratio'): BELOW_ONE,
    ('rlhf', 'beta'): NON_NEGATIVE,
    ('rlhf', 'lmbda'): PROBABILITY,
    ('rlhf', 'sft_alpha'): NON_NEGATIVE,
    ('rlhf', 'llm_kd_weight'): NON_NEGATIVE,  # 0 removes the logits KD term and its metric
    ('rlhf', 'gkd_logits_topk'): AT_LEAST_ONE,
    ('rlhf', 'epsilon'): NON_NEGATIVE,
    ('rlhf', 'epsilon_high'): NON_NEGATIVE,
    ('rlhf', 'top_entropy_quantile'): PROBABILITY,
    ('rlhf', 'vllm_gpu_memory_utilization'): Bound(0, 1, low_inclusive=False),
    ('rlhf', 'max_completion_length'): AT_LEAST_ONE,
    ('rlhf', 'num_generations'): AT_LEAST_ONE,
    ('rlhf', 'generation_batch_size'): AT_LEAST_ONE,
    ('rlhf', 'steps_per_generation'): AT_LEAST_ONE,
    ('custom', 'sample_limit'): AT_LEAST_ONE,
}

# What a bound's message adds for knobs whose number is easy to misread.
BOUND_HINTS = {
    ('rlhf', 'gkd_logits_topk'): 'the teacher logits kept per token, e.g. 64; leave it unset for the JSD over the '
                                 'whole vocabulary',
    ('rlhf', 'llm_kd_weight'): '0 removes the logits KD term',
}

# Free-form `str` fields with a known set of values, and what to say for a value people often try.
NAMED = (('tuner', 'train_type'), ('model', 'model_type'), ('template', 'template'),
         ('training', 'lr_scheduler_type'), ('training', 'eval_strategy'))
HINTS = {
    ('tuner', 'train_type', 'qlora'): 'QLoRA is `tuner.train_type: lora` with `model.quant_method: bnb` and '
                                      '`model.quant_bits: 4`',
}
# Fields whose annotation lists an enum but whose strings are not one value of it.
NOT_ENUMERATED = {('training', 'debug')}


def allowed_values(section: str, key: str, spec: Spec) -> list[Any]:
    """The values a string setting of ``section.key`` must be one of (empty: any string)."""
    if (section, key) == ('tuner', 'train_type'):
        return swift_fields.supported_tuners()
    if (section, key) in NAMED:
        return swift_fields.named_choices(section, key)
    if (section, key) in NOT_ENUMERATED:
        return []
    return choices(spec)


def value_problem(section: str, key: str, value: Any, spec: Spec) -> str | None:
    """What is wrong with a well-typed ``value`` of ``section.key``, or None."""
    if is_number(value):
        problem = BOUNDS.get((section, key), FINITE).problem(value)
        hint = BOUND_HINTS.get((section, key))
        return f'{problem} ({hint})' if problem and hint else problem
    if isinstance(value, dict) and (found := non_finite_paths(value)):  # e.g. `lr_scheduler_kwargs: {min_lr: .nan}`
        inner, number = found[0]
        return f'`{".".join(inner).replace(".[", "[")}`: must be a finite number, got {number}'
    if isinstance(value, (list, tuple)) and any(is_number(v) for v in value):
        bound = BOUNDS.get((section, key), FINITE)
        return next((f'[{i}] {p}' for i, v in enumerate(value) if is_number(v) and (p := bound.problem(v))), None)
    allowed = allowed_values(section, key, spec) if isinstance(value, str) else []
    if not allowed or value in allowed:
        return None
    if (hint := HINTS.get((section, key, value))) is not None:
        return f'{value!r} is not available: {hint}'
    close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1, cutoff=0.6)
    listed = ', '.join(map(str, allowed)) if len(allowed) <= 20 else f'{len(allowed)} names, see ms-swift\'s docs'
    return f'{value!r} is not one of {listed}' + (f'; did you mean {close[0]!r}?' if close else '')
