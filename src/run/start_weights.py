"""`tuner.resume_from_checkpoint`: start a new stage from an earlier stage's weights (the playbook's two-stage recipe).

This is not `training.resume_from_checkpoint`, which continues an interrupted run (its step, optimizer, schedule).
A new stage starts at step 0 with a fresh optimizer and its own tuner settings, from the weights the earlier stage
ended with:

- a full checkpoint (`config.json`) is the new stage's model;
- an adapter (`adapter_config.json`, e.g. stage 1's aligner LoRA) is merged into `model.model` once, into
  `<checkpoint>-merged/` beside it (the folder `swift export --merge_lora true` writes), which becomes the new stage's
  model. The new stage's adapter then names that folder as its base, so `swift infer --adapters <stage 2 checkpoint>`
  loads both stages. The merge is reused while the adapter and the base model are the ones it was made of
  (``merge_fingerprint``), made again when either changed, and a `<checkpoint>-merged/` the toolkit did not write is
  refused, not replaced.

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
    target = merged_path(checkpoint)
    wanted = merge_fingerprint(checkpoint, base_model)
    if _marker(target) != wanted:
        if target.exists() and not (target / DONE).is_file():
            raise ConfigError([f'`tuner.resume_from_checkpoint`: {target} exists and is not a merge of this toolkit '
                               '(`swift export --merge_lora`?), so it is not known to hold this adapter merged into '
                               f'`model.model`, and it is not the toolkit\'s to replace: move it away (the toolkit '
                               'then merges there), or set `model.model` to it and leave '
                               '`tuner.resume_from_checkpoint` out'])
        if rank == 0:
            _merge(checkpoint, base_model, target, wanted)
        else:
            _wait_for(target, wanted)
    return str(target)


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

    again = ' (again: the adapter or the base model changed since the last merge)' if target.exists() else ''
    print(f'tuner.resume_from_checkpoint: merging the adapter {checkpoint} into {base_model} -> {target}{again}',
          flush=True)
    partial = target.with_name(target.name + '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForImageTextToText.from_pretrained(base_model, dtype='auto')
    merged = PeftModel.from_pretrained(model, checkpoint).merge_and_unload()
    merged.save_pretrained(partial, safe_serialization=True)
    AutoProcessor.from_pretrained(base_model).save_pretrained(partial)
    (partial / DONE).write_text(json.dumps(fingerprint))
    shutil.rmtree(target, ignore_errors=True)  # the toolkit's own earlier merge (its marker was checked)
    partial.rename(target)


def _wait_for(target: Path, fingerprint: dict) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while _marker(target) != fingerprint:
        if time.monotonic() > deadline:
            raise ConfigError([f'`tuner.resume_from_checkpoint`: rank 0 did not finish merging into {target}'])
        time.sleep(2)
