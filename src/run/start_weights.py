"""`tuner.resume_from_checkpoint`: start a new stage from an earlier stage's weights (the playbook's two-stage recipe).

This is not `training.resume_from_checkpoint`, which continues an interrupted run (its step, optimizer, schedule).
A new stage starts at step 0 with a fresh optimizer and its own tuner settings, from the weights the earlier stage
ended with:

- a full checkpoint (`config.json`) is the new stage's model;
- an adapter (`adapter_config.json`, e.g. stage 1's aligner LoRA) is merged into `model.model` once, into
  `<checkpoint>-merged/` beside it (the folder `swift export --merge_lora true` writes), which becomes the new stage's
  model. The new stage's adapter then names that folder as its base, so `swift infer --adapters <stage 2 checkpoint>`
  loads both stages. The merge is reused while the adapter and the base model are the ones it was made of
  (``merge_fingerprint``). A merge is never replaced: a stage-2 adapter trained on it names it as its base. When the
  adapter or the base changed (stage 1 trained again into the same checkpoint), or `<checkpoint>-merged/` is not the
  toolkit's (`swift export`'s), the merge goes to `<checkpoint>-merged-<fingerprint>/` instead.

The adapter must have been trained on `model.model`: an adapter whose `base_model_name_or_path` is another local
model is refused (merged into another base, its weights would be neither stage's).

With several processes, rank 0 merges and the others wait for the finished folder.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from pathlib import Path

from ..config import ConfigError

DONE = '.merged'  # written last: a folder without it is an interrupted merge
WAIT_SECONDS = 3600


def merged_path(checkpoint: Path) -> Path:
    return checkpoint.with_name(checkpoint.name + '-merged')


def start_model(checkpoint: str | os.PathLike, base_model: str, rank: int) -> str:
    """The model folder a stage starting from ``checkpoint`` loads: the checkpoint itself (full weights) or the merge of
    its adapter into ``base_model``."""
    checkpoint = Path(checkpoint)
    if (checkpoint / 'config.json').is_file() and not (checkpoint / 'adapter_config.json').is_file():
        return str(checkpoint)
    if not (checkpoint / 'adapter_config.json').is_file():
        raise ConfigError([f'`tuner.resume_from_checkpoint`: {checkpoint} holds neither an adapter '
                           '(adapter_config.json) nor a full model (config.json)'])
    refuse_another_base(checkpoint, base_model)
    wanted = merge_fingerprint(checkpoint, base_model)
    target = merge_target(checkpoint, wanted)
    if _marker(target) != wanted:
        if rank == 0:
            _merge(checkpoint, base_model, target, wanted)
        else:
            _wait_for(target, wanted)
    return str(target)


def merge_target(checkpoint: Path, fingerprint: dict) -> Path:
    """Where the merge of ``fingerprint`` is (or goes): `<checkpoint>-merged/` when it holds that merge or does not
    exist, else `<checkpoint>-merged-<fingerprint hash>/`; never a folder holding another merge."""
    plain = merged_path(checkpoint)
    if _marker(plain) == fingerprint or not plain.exists():
        return plain
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:10]
    return plain.with_name(f'{plain.name}-{digest}')


def refuse_another_base(checkpoint: Path, base_model: str) -> None:
    """Refuse an adapter trained on another local model than ``base_model``."""
    try:
        recorded = json.loads((checkpoint / 'adapter_config.json').read_text()).get('base_model_name_or_path')
    except (OSError, ValueError, AttributeError):
        return
    if not recorded or not Path(recorded).is_dir() or not Path(base_model).is_dir():
        return  # a hub id, or a base moved since: the names cannot be compared
    if Path(recorded).resolve() != Path(base_model).resolve():
        raise ConfigError([f'`tuner.resume_from_checkpoint`: the adapter {checkpoint} was trained on {recorded} '
                           f'(its adapter_config.json), and `model.model` is {base_model}; merged into another base '
                           f'its weights would be neither stage\'s. Set `model.model: {recorded}`'])


def merge_fingerprint(checkpoint: Path, base_model: str) -> dict:
    """What a merge was made of: the adapter's files by content, the base model's weight and config files by size and
    modification time (hashing a base model's gigabytes on every start would cost minutes). A stage 1 trained again
    into the same checkpoint, or another base model, gives another fingerprint, so the old merge is not reused."""
    adapter = {}
    for path in sorted(checkpoint.glob('adapter_*')):
        with path.open('rb') as f:  # streamed: a full-rank adapter can be gigabytes
            adapter[path.name] = hashlib.file_digest(f, 'sha256').hexdigest()
    base = Path(base_model)
    files = sorted([*base.glob('*.safetensors'), *base.glob('*.bin'), *base.glob('config.json')]) if base.is_dir() \
        else []
    return {'checkpoint': str(checkpoint.resolve()), 'adapter': adapter,
            'base_model': str(base.resolve()) if base.is_dir() else base_model,
            'base_files': {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in files}}


def _marker(target: Path) -> dict | None:
    try:
        return json.loads((target / DONE).read_text())
    except (OSError, ValueError):
        return None  # no merge, an interrupted one, or an older version's marker (the checkpoint's path only)


def _merge(checkpoint: Path, base_model: str, target: Path, fingerprint: dict) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    again = (f' (beside {merged_path(checkpoint).name}/, which holds another merge: the adapter or the base model '
             'changed since)' if target != merged_path(checkpoint) else '')
    print(f'tuner.resume_from_checkpoint: merging the adapter {checkpoint} into {base_model} -> {target}{again}',
          flush=True)
    partial = target.with_name(target.name + '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForImageTextToText.from_pretrained(base_model, dtype='auto')
    merged = PeftModel.from_pretrained(model, checkpoint).merge_and_unload()
    merged.save_pretrained(partial, safe_serialization=True)
    AutoProcessor.from_pretrained(base_model).save_pretrained(partial)
    (partial / DONE).write_text(json.dumps(fingerprint))
    shutil.rmtree(target, ignore_errors=True)  # an interrupted merge of this fingerprint (no marker): never a merge
    partial.rename(target)


def _wait_for(target: Path, fingerprint: dict) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _marker(target) != fingerprint:
        if time.monotonic() > deadline:
            raise ConfigError([f'`tuner.resume_from_checkpoint`: rank 0 did not finish merging into {target}'])
        time.sleep(2)
