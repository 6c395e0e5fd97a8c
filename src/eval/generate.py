"""Greedy answers of a trained checkpoint, through ms-swift's ``TransformersEngine`` (batched, with a progress bar).

The model and template are built from the run's config exactly as training built them (model type, dtype,
attention implementation, ``max_pixels``, ``max_length``); the checkpoint is either an adapter, loaded onto the
config's base model, or a full model that replaces it.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import ConfigError, ProjectConfig
from ..config.remote_code import remote_code_problems
from .errors import EvalError

if TYPE_CHECKING:
    from swift.infer_engine import TransformersEngine

    from .samples import EvalSample


@dataclass(frozen=True)
class Generation:
    text: str
    finish_reason: str | None
    """``stop`` (the model ended its answer) or ``length`` (cut at the token limit)."""


def checkpoint_kind(checkpoint: Path) -> str:
    """``adapter`` or ``full``; anything else is an error that says what a checkpoint folder holds."""
    if (checkpoint / 'adapter_config.json').is_file():
        return 'adapter'
    if (checkpoint / 'config.json').is_file():
        return 'full'
    raise EvalError(f'--checkpoint {checkpoint}: not a checkpoint; expected a folder with adapter_config.json (an '
                      'adapter) or config.json (a full model), such as output/<run>/checkpoint-<step>')


def load_engine(cfg: ProjectConfig, checkpoint: Path, batch_size: int) -> 'TransformersEngine':
    from swift.arguments import InferArguments
    from swift.infer_engine import TransformersEngine

    from ..swift_seams import remote_code_only_for
    from ..trainers.swift_args import swift_kwargs

    adapter = checkpoint_kind(checkpoint) == 'adapter'
    kwargs = swift_kwargs(cfg, ('model', 'template'))
    if not adapter:
        kwargs['model'] = str(checkpoint)
    trusted = bool(cfg.model.get('trust_remote_code'))
    if problems := remote_code_problems(kwargs['model'], 'model.trust_remote_code', trusted):
        raise ConfigError(problems)
    with remote_code_only_for([kwargs['model']] if trusted else []):
        # load_args=False: the config is the one source of settings, not the args.json ms-swift saved beside the
        # weights.
        args = InferArguments(**kwargs, load_args=False)
        model, processor = args.get_model_processor()
        return TransformersEngine(model, template=args.get_template(processor),
                                  adapters=[str(checkpoint)] if adapter else None, max_batch_size=batch_size)


def generate(engine: 'TransformersEngine', samples: list['EvalSample'],
             max_new_tokens: int | None = None) -> list[Generation]:
    """One greedy answer per sample, in order; ``max_new_tokens`` None: up to the template's ``max_length``."""
    from swift.infer_engine import InferRequest, RequestConfig

    requests = [InferRequest(**s.request) for s in samples]
    responses = engine.infer(requests, RequestConfig(max_tokens=max_new_tokens, temperature=0.0), use_tqdm=True)
    return [Generation(r.choices[0].message.content or '', r.choices[0].finish_reason) for r in responses]
