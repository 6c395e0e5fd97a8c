"""A run's validation records in ms-swift's own dataset format, for ms-swift's tools.

ms-swift saves the run's arguments as ``args.json`` beside every checkpoint; ``swift infer --adapters CKPT
--load_data_args true`` reads the validation data named there, and ``--val_dataset FILE`` reads a file the user names.
Neither reads the project's records (geometry answers are built on the fly, image paths are relative to the JSONL), so
the run writes ``val.swift.jsonl``: every validation record exactly as the model saw it in evaluation, as text
messages with ``<image>`` placeholders and absolute image paths.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tqdm import tqdm

from .builders.chat import to_swift_row

SWIFT_VAL = 'val.swift.jsonl'


def write_swift_rows(dataset: Any, path: Path) -> Path:
    """Write ``dataset.inputs(i)`` of every index as ms-swift rows to ``path`` (whole or not at all)."""
    partial = path.with_name(path.name + '.partial')
    with open(partial, 'w', encoding='utf-8') as f:
        for idx in tqdm(range(len(dataset)), desc=f'writing {path.name}', unit='rec', disable=len(dataset) < 1000):
            f.write(json.dumps(to_swift_row(dataset.inputs(idx)), ensure_ascii=False) + '\n')
    partial.replace(path)
    return path
