"""Range and choice checks for the numbers and names the toolkit passes to ms-swift, run with validation.

ms-swift and transformers accept a negative learning rate, `lora_rank: 0` or `train_type: qlora` when the arguments
are built and fail (or, like `max_steps: 0`, quietly do something else) once the model is loaded. Here each such value
is an error before anything loads, naming the file and the key, with the closest valid name for a misspelt one.
"""
from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Any

from . import swift_fields
from .types import Spec, choices

KeyPath = tuple[str, ...]


@dataclass(frozen=True)
class Bound:
    """The numbers a knob takes: between ``low`` and ``high`` (each inclusive or not), or one of ``also``."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    also: tuple[float, ...] = ()

    def admits(self, value: float) -> bool:
        if value in self.also:
            return True
        if self.low is not None and (value < self.low or value == self.low and not self.low_inclusive):
            return False
        return self.high is None or value < self.high or value == self.high and self.high_inclusive

    def __str__(self) -> str:
        if self.high is None:
            text = f'{">=" if self.low_inclusive else ">"} {self.low:g}'
        else:
            opening, closing = '[' if self.low_inclusive else '(', ']' if self.high_inclusive else ')'
            text = f'in {opening}{self.low:g}, {self.high:g}{closing}'
        return text + ''.join(f' or {a:g}' for a in self.also)


POSITIVE = Bound(0, low_inclusive=False)
NON_NEGATIVE = Bound(0)
AT_LEAST_ONE = Bound(1)
PROBABILITY = Bound(0, 1)
BELOW_ONE = Bound(0, 1, high_inclusive=False)

BOUNDS: dict[KeyPath, Bound] = {
    ('training', 'learning_rate'): POSITIVE,
    ('training', 'llm_lr'): POSITIVE,
    ('training', 'vit_lr'): POSITIVE,
    ('training', 'aligner_lr'): POSITIVE,
    ('training', 'per_device_train_batch_size'): AT_LEAST_ONE,
    ('training', 'per_device_eval_batch_size'): AT_LEAST_ONE,
    ('training', 'gradient_accumulation_steps'): AT_LEAST_ONE,
    ('training', 'effective_batch_size'): AT_LEAST_ONE,
    ('training', 'max_steps'): Bound(1, also=(-1, )),  # -1: train `num_train_epochs`; 0 would still take a step
    ('training', 'num_train_epochs'): POSITIVE,
    ('training', 'warmup_ratio'): PROBABILITY,
    ('training', 'warmup_steps'): NON_NEGATIVE,
    ('training', 'weight_decay'): NON_NEGATIVE,
    ('training', 'max_grad_norm'): NON_NEGATIVE,
    ('training', 'adam_beta1'): BELOW_ONE,
    ('training', 'adam_beta2'): BELOW_ONE,
    ('training', 'adam_epsilon'): POSITIVE,
    ('training', 'logging_steps'): POSITIVE,
    ('training', 'save_steps'): POSITIVE,
    ('training', 'eval_steps'): POSITIVE,
    ('training', 'save_total_limit'): AT_LEAST_ONE,
    ('training', 'dataloader_num_workers'): NON_NEGATIVE,
    ('training', 'seed'): NON_NEGATIVE,
    ('training', 'temperature'): NON_NEGATIVE,
    ('tuner', 'lora_rank'): AT_LEAST_ONE,
    ('tuner', 'lora_alpha'): POSITIVE,
    ('tuner', 'lora_dropout'): BELOW_ONE,
    ('template', 'max_pixels'): AT_LEAST_ONE,
    ('rlhf', 'beta'): NON_NEGATIVE,
    ('rlhf', 'lmbda'): PROBABILITY,
    ('rlhf', 'max_completion_length'): AT_LEAST_ONE,
    ('rlhf', 'num_generations'): AT_LEAST_ONE,
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
    bound = BOUNDS.get((section, key))
    if bound is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return None if bound.admits(value) else f'must be {bound}, got {value!r}'
    allowed = allowed_values(section, key, spec) if isinstance(value, str) else []
    if not allowed or value in allowed:
        return None
    if (hint := HINTS.get((section, key, value))) is not None:
        return f'{value!r} is not available: {hint}'
    close = difflib.get_close_matches(value, [str(a) for a in allowed], n=1, cutoff=0.6)
    listed = ', '.join(map(str, allowed)) if len(allowed) <= 20 else f'{len(allowed)} names, see ms-swift\'s docs'
    return f'{value!r} is not one of {listed}' + (f'; did you mean {close[0]!r}?' if close else '')
