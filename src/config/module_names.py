"""Module names that LoRA targets and `modules_to_save` name must match, checked against the checkpoint's weights.

PEFT matches a `target_modules` entry against the end of each module name; an entry that matches nothing is skipped
without a word (the playbook's `- q_proj; k_proj; v_proj; o_proj` lines are one entry each, match nothing, and the run
trained `lm_head` alone). Here every entry must match a module of the checkpoint, read from its safetensors headers
before anything loads; a hub id (no local weights) gets the syntax check only.
"""
from __future__ import annotations

import json
import re
import struct
from pathlib import Path

from .model_type import checkpoint_config

# ms-swift's keywords that expand to module lists (swift/pipelines/train/tuner.py).
KEYWORDS = {'all-linear', 'all-embedding', 'all-norm', 'all-router'}


def weight_module_names(model_dir: str | Path) -> set[str] | None:
    """Every module that owns a weight in a local checkpoint (`a.b.weight` -> `a.b`, and each prefix `a`), or None
    when the folder has no safetensors weights to read."""
    folder = Path(model_dir)
    index = folder / 'model.safetensors.index.json'
    try:
        if index.is_file():
            keys = set(json.loads(index.read_text(encoding='utf-8'))['weight_map'])
        elif (folder / 'model.safetensors').is_file():
            with open(folder / 'model.safetensors', 'rb') as f:
                (length, ) = struct.unpack('<Q', f.read(8))
                keys = set(json.loads(f.read(length))) - {'__metadata__'}
        else:
            return None
    except (OSError, ValueError, KeyError, struct.error):
        return None
    modules = set()
    for key in keys:
        parts = key.split('.')[:-1]  # drop the parameter name
        modules.update('.'.join(parts[:i]) for i in range(1, len(parts) + 1))
    if ties_embeddings(folder):  # `lm_head` shares the embedding's weight, which is saved once, under the embedding
        modules.add('lm_head')
    return modules


TIED_HUB_MODELS = re.compile(r'qwen3-vl-(2b|4b)(?![0-9])', re.I)
"""Hub ids of the published checkpoints whose `lm_head` is tied (Qwen3-VL 2B and 4B; 8B and larger are not), for a
hub id whose config.json is not in the local Hugging Face cache."""


def ties_embeddings(model: str | Path) -> bool:
    """Whether a checkpoint's `lm_head` is its input embedding's weight (`tie_word_embeddings`, at the top or in
    `text_config`, as Qwen3-VL 2B / 4B have it): from a local folder's config.json, a hub id's in the Hugging Face
    cache, or the published hub ids."""
    config = checkpoint_config(model) or _cached_hub_config(str(model))
    if config is None:
        return bool(TIED_HUB_MODELS.search(str(model)))
    return bool(config.get('tie_word_embeddings') or config.get('text_config', {}).get('tie_word_embeddings'))


def _cached_hub_config(repo_id: str) -> dict | None:
    """A hub id's config.json from the local Hugging Face cache (nothing is downloaded), or None."""
    if Path(repo_id).exists() or repo_id.count('/') != 1:
        return None
    try:
        from huggingface_hub import try_to_load_from_cache

        path = try_to_load_from_cache(repo_id, 'config.json')
        return json.loads(Path(path).read_text(encoding='utf-8')) if isinstance(path, str) else None
    except (OSError, ValueError, ImportError):
        return None


def matches_any(entries: list[str], module: str) -> bool:
    """Whether PEFT would match ``module`` by one of the string ``entries`` (a module named so, or ending so)."""
    return any(module == entry or module.endswith('.' + entry) for entry in entries)


def entry_problem(entry: str) -> str | None:
    """What is wrong with the spelling of one entry (several names in one string), or None."""
    if any(sep in entry for sep in (';', ',', ' ')):
        names = [n for n in entry.replace(';', ' ').replace(',', ' ').split() if n]
        return (f'{entry!r} is one entry holding several names, and it matches no module; write them as list '
                f'items: [{", ".join(names)}]')
    return None


def matches(entry: str, modules: set[str]) -> bool:
    """PEFT's rule for a string target: the module's name is the entry or ends with `.<entry>`."""
    return any(name == entry or name.endswith('.' + entry) for name in modules)


def unmatched(entries: list[str], modules: set[str]) -> list[str]:
    """The entries (keywords aside) that name no module of the checkpoint."""
    return [e for e in entries if e not in KEYWORDS and entry_problem(e) is None and not matches(e, modules)]
