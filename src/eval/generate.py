"""Greedy answers of a trained checkpoint, through ms-swift's ``TransformersEngine`` (batched, with a progress bar).

The model and template are built from the run's config exactly as training built them (model type, dtype,
attention implementation, ``max_pixels``, ``max_length``); the checkpoint is either a full model that replaces the
config's, or an adapter, loaded onto the base model it was trained on: the `model` its ``args.json`` records, which
is what ``swift infer --adapters`` loads too (for a two-stage recipe's stage 2, the merge of stage 1 into the base,
not the bare base the config names).
"""
from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

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


def adapter_base(checkpoint: Path) -> str | None:
    """The base model an adapter checkpoint was trained on, from its ``args.json`` (ms-swift writes one into every
    checkpoint, and ``swift infer --adapters`` loads the `model` it names); None when the file does not say."""
    try:
        model = json.loads((checkpoint / 'args.json').read_text(encoding='utf-8')).get('model')
    except (OSError, ValueError, AttributeError):
        return None
    return model if isinstance(model, str) and model else None


def load_engine(cfg: ProjectConfig, checkpoint: Path, batch_size: int) -> 'TransformersEngine':
    from swift.arguments import InferArguments
    from swift.infer_engine import TransformersEngine

    from ..swift_seams import remote_code_only_for

    adapter = checkpoint_kind(checkpoint) == 'adapter'
    kwargs = cfg.swift_kwargs(('model', 'template'))
    if not adapter:
        kwargs['model'] = str(checkpoint)
    elif (base := adapter_base(checkpoint)) is not None and base != str(kwargs['model']):
        if Path(base).is_absolute() and not Path(base).exists():
            raise EvalError(f'--checkpoint {checkpoint}: the adapter was trained on {base} (its args.json), which '
                            'is not on this machine; swift infer would fail the same way. Put that model there, or '
                            'merge the adapter where it exists (swift export --merge_lora true) and evaluate the '
                            'merged checkpoint')
        print(f'{checkpoint} is an adapter trained on {base} (its args.json); evaluating it on that base, as swift '
              f'infer does, not on the config\'s model.model {kwargs["model"]}', file=sys.stderr, flush=True)
        kwargs['model'] = base
    trusted = cfg.settings.trust_remote_code
    if problems := remote_code_problems(kwargs['model'], 'model.trust_remote_code', trusted):
        raise ConfigError(problems)
    with remote_code_only_for([kwargs['model']] if trusted else []):
        # load_args=False: the config is the one source of settings, not the args.json ms-swift saved beside the
        # weights.
        args = InferArguments(**kwargs, load_args=False)
        model, processor = args.get_model_processor()
        return TransformersEngine(model, template=args.get_template(processor),
                                  adapters=[str(checkpoint)] if adapter else None, max_batch_size=batch_size)


CHUNK_BATCHES = 8
"""Batches generated between two writes of the answers: a run stopped midway keeps all but the last few."""


def generate(engine: 'TransformersEngine', samples: list['EvalSample'], max_new_tokens: int | None = None,
             keep: Callable[[list['EvalSample'], list[Generation]], None] | None = None) -> list[Generation]:
    """One greedy answer per sample, in order; ``max_new_tokens`` None: up to the template's ``max_length``. The
    samples go to the engine a few batches at a time, and ``keep`` receives each chunk's answers as they come."""
    from swift.infer_engine import InferRequest, RequestConfig
    from tqdm import tqdm

    config = RequestConfig(max_tokens=max_new_tokens, temperature=0.0)
    size = max(1, engine.max_batch_size) * CHUNK_BATCHES  # ms-swift's 0: no limit
    generations: list[Generation] = []
    with tqdm(total=len(samples), desc='generating', unit='answer', file=sys.stderr) as bar:
        for start in range(0, len(samples), size):
            chunk = samples[start:start + size]
            responses = engine.infer([InferRequest(**s.request) for s in chunk], config, use_tqdm=False)
            done = [Generation(r.choices[0].message.content or '', r.choices[0].finish_reason) for r in responses]
            if keep is not None:
                keep(chunk, done)
            generations += done
            bar.update(len(chunk))
    return generations
