"""Code shipped inside a checkpoint runs only when the config opts in.

A checkpoint folder can name Python files of its own in the `auto_map` entry of its `config.json`,
`tokenizer_config.json` or processor configs; `transformers` imports them when asked to `trust_remote_code`, which
ms-swift's loader does by default. Qwen3-VL and Qwen2.5-VL are native `transformers` architectures and never need it,
so here such a checkpoint is refused before anything loads, naming the file, the entry and the key that opts in:
`model.trust_remote_code: true` for the model (and its GRPO reference model), `rlhf.teacher_trust_remote_code:
true` for a GKD teacher. While a run loads models, ``src/swift_seams.py`` keeps remote code off for every folder not
opted in, whatever ms-swift asks for.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .project import ProjectConfig

CONFIG_FILES = ('config.json', 'tokenizer_config.json', 'processor_config.json', 'preprocessor_config.json',
                'video_preprocessor_config.json', 'feature_extractor_config.json')


@dataclass(frozen=True)
class RemoteCode:
    """One `auto_map` entry of a checkpoint: the file that declares it, the auto class, the module it would import."""

    file: Path
    auto_class: str
    reference: str

    @property
    def module_file(self) -> str:
        """`configuration_x.XConfig` -> `configuration_x.py` (a `repo--module.Class` reference names another repo)."""
        return self.reference.split('--')[-1].rsplit('.', 1)[0] + '.py'


def remote_code(model_dir: str | Path) -> list[RemoteCode]:
    """Every `auto_map` entry in a local checkpoint folder's config files (empty for a hub id or a missing folder)."""
    folder = Path(model_dir)
    found = []
    for name in CONFIG_FILES:
        try:
            data = json.loads((folder / name).read_text(encoding='utf-8'))
        except (OSError, ValueError):
            continue
        auto_map = data.get('auto_map') if isinstance(data, dict) else None
        for auto_class, references in (auto_map.items() if isinstance(auto_map, dict) else []):
            for reference in references if isinstance(references, list) else [references]:
                if isinstance(reference, str):
                    found.append(RemoteCode(folder / name, auto_class, reference))
    return found


def remote_code_notices(cfg: 'ProjectConfig') -> list[str]:
    """One line per opted-in model whose checkpoint ships code: which files will run (said once, at start)."""
    notices = []
    for path, key, trusted in cfg.model_folders():
        files = sorted({entry.module_file for entry in remote_code(path)})
        if trusted and files:
            notices.append(f'{key}: true: loading {path} runs the code it ships: {", ".join(files)}')
    return notices


def remote_code_problems(model_dir: str | Path, opt_in: str, trusted: bool) -> list[str]:
    """Why loading ``model_dir`` would run code it ships while `opt_in` (the YAML key) is off; empty otherwise."""
    if trusted:
        return []
    return [f'{entry.file}: `auto_map.{entry.auto_class}` asks to run `{entry.reference}` from '
            f'{entry.module_file} in the checkpoint; Qwen-VL checkpoints never need code of their own. Set '
            f'`{opt_in}: true` only if you trust that code' for entry in remote_code(model_dir)]
