"""Every place the project reaches into ms-swift's (or transformers') internals, gathered in one module.

Each seam names what it replaces and why; ``tests/trainers/test_swift_seams.py`` checks that every name patched here
still exists at the pinned versions, so an upgrade that moves one fails with one clear message instead of silently
changing behaviour.
"""
from __future__ import annotations

import contextlib
import importlib
from typing import Any, Iterator

from transformers.integrations.integration_utils import rewrite_logs

PREFIXES = ('train/', 'eval/', 'test/')

# module -> attribute of each patched internal (checked by the seam test).
PATCHED = {
    'swift.trainers': ('TrainerFactory', ),
    'swift.trainers.patcher': ('append_to_jsonl', ),
    'swift.pipelines.train.sft': ('append_to_jsonl', ),
}
LOGGING_JSONL = 'logging.jsonl'


def prefixed(row: dict[str, Any]) -> dict[str, Any]:
    """A ``logging.jsonl`` row with every key under ``train/``, ``eval/`` or ``test/``: the rule transformers applies
    to TensorBoard's scalars (``eval_x`` -> ``eval/x``, anything else -> ``train/x``), also for ms-swift's progress
    fields and run summary; the summary's ``log_history`` rows are renamed the same way."""
    done = {k: v for k, v in row.items() if k.startswith(PREFIXES)}
    out = {**rewrite_logs({k: v for k, v in row.items() if k not in done}), **done}
    history = out.get('train/log_history')
    if isinstance(history, list):
        out['train/log_history'] = [prefixed(h) if isinstance(h, dict) else h for h in history]
    return out


@contextlib.contextmanager
def prefixed_logging_jsonl() -> Iterator[None]:
    """While a run trains, ms-swift's ``logging.jsonl`` writers (its progress callback and the end-of-run summary)
    write ``prefixed`` rows. Both call ``swift.utils.append_to_jsonl`` through their module's own name for it."""
    modules = [importlib.import_module(name) for name in ('swift.trainers.patcher', 'swift.pipelines.train.sft')]
    original = modules[0].append_to_jsonl

    def append(path, obj, *args, **kwargs):
        if str(path).endswith(LOGGING_JSONL) and isinstance(obj, dict):
            obj = prefixed(obj)
        return original(path, obj, *args, **kwargs)

    saved = [(m, m.append_to_jsonl) for m in modules]
    for module in modules:
        module.append_to_jsonl = append
    try:
        yield
    finally:
        for module, function in saved:
            module.append_to_jsonl = function


@contextlib.contextmanager
def trainer_class_for_run(task: str, trainer_cls: type) -> Iterator[None]:
    """Have ms-swift's ``TrainerFactory`` build ``trainer_cls`` for ``task`` during one run, then restore its own.

    ms-swift picks the trainer class by task name from ``TrainerFactory.TRAINER_MAPPING`` (dotted paths); there is no
    public hook to pass a class."""
    from swift.trainers import TrainerFactory

    mapping = TrainerFactory.TRAINER_MAPPING
    original = mapping[task]
    mapping[task] = f'{trainer_cls.__module__}.{trainer_cls.__qualname__}'
    try:
        yield
    finally:
        mapping[task] = original


@contextlib.contextmanager
def project_run(task: str, trainer_cls: type) -> Iterator[None]:
    """Both seams of a training run: the project's trainer class and prefixed ``logging.jsonl`` rows."""
    with trainer_class_for_run(task, trainer_cls), prefixed_logging_jsonl():
        yield
