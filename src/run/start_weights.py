"""`tuner.resume_from_checkpoint`: start a new stage from an earlier stage's weights (the playbook's two-stage recipe).

This is not `training.resume_from_checkpoint`, which continues an interrupted run (its step, optimizer, schedule).
A new stage starts at step 0 with a fresh optimizer and its own tuner settings, from the weights the earlier stage
ended with:

- a full checkpoint (`config.json`) is the new stage's model;
- an adapter (`adapter_config.json`, e.g. stage 1's aligner LoRA) is merged into `model.model` once, into
  `<checkpoint>-merged/` beside it (the folder `swift export --merge_lora true` writes), which becomes the new stage's
  model. The new stage's adapter then names that folder as its base, so `swift infer --adapters <stage 2 checkpoint>`
  loads both stages.

With several processes, rank 0 merges and the others wait for the finished folder.
"""
from __future__ import annotations

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
    if not (target / DONE).is_file():
        if rank == 0:
            _merge(checkpoint, base_model, target)
        else:
            _wait_for(target)
    return str(target)


def _merge(checkpoint: Path, base_model: str, target: Path) -> None:
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, AutoProcessor

    print(f'tuner.resume_from_checkpoint: merging the adapter {checkpoint} into {base_model} -> {target}',
          flush=True)
    partial = target.with_name(target.name + '.partial')
    shutil.rmtree(partial, ignore_errors=True)
    model = AutoModelForImageTextToText.from_pretrained(base_model, dtype='auto')
    merged = PeftModel.from_pretrained(model, checkpoint).merge_and_unload()
    merged.save_pretrained(partial, safe_serialization=True)
    AutoProcessor.from_pretrained(base_model).save_pretrained(partial)
    (partial / DONE).write_text(str(checkpoint))
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def _wait_for(target: Path) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not (target / DONE).is_file():
        if time.monotonic() > deadline:
            raise ConfigError([f'`tuner.resume_from_checkpoint`: rank 0 did not finish merging into {target}'])
        time.sleep(2)
