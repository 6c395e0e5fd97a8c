"""Paths that name an earlier stage's output, found where ms-swift put it.

A recipe's next stage names the earlier one's output as that config writes it: ``output/stage_a/last``. Under
ms-swift's default `training.add_version: true` the earlier run wrote into ``output/stage_a/v<N>-<time>/`` instead,
so the path as written does not exist. ``resolve_stage_outputs`` finds it in the newest version folder (the highest
``<N>``) that holds it, and says which one it took; a path that exists as written is kept, and one found nowhere is
left for the input checks to report.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

VERSION = re.compile(r'^v(\d+)-\d{8}-\d{6}$')  # ms-swift's add_version_to_work_dir: v<N>-<YYYYmmdd>-<HHMMSS>
# Keys that may name an earlier stage's output: the start weights of a new stage, the model of a merged stage,
# the GKD teacher and the GRPO reference model.
STAGE_KEYS = (('tuner', 'resume_from_checkpoint'), ('model', 'model'), ('rlhf', 'teacher_model'),
              ('rlhf', 'ref_model'))


def in_newest_version(path: Path) -> Path | None:
    """``path`` in the newest ``v<N>-<time>`` folder beside it that has it (``out/last`` ->
    ``out/v3-20261203-101500/last``), or None."""
    if not path.parent.is_dir():
        return None
    versions = sorted((int(m[1]), child / path.name) for child in path.parent.iterdir()
                      if (m := VERSION.match(child.name)) and (child / path.name).exists())
    return versions[-1][1] if versions else None


def resolve_stage_outputs(cfg: Any) -> list[str]:
    """Point every ``STAGE_KEYS`` path that does not exist as written at the versioned folder that holds it;
    returns one notice per path changed."""
    notices = []
    for section, key in STAGE_KEYS:
        value = cfg.written(section, key)
        if not isinstance(value, str) or not Path(value).is_absolute() or Path(value).exists():
            continue
        found = in_newest_version(Path(value))
        if found is not None:
            cfg.rewrite(section, key, str(found))
            notices.append(f'`{section}.{key}`: {value} is under ms-swift\'s version folder (training.add_version): '
                           f'using {found}')
    return notices


def resume_in_version_folder(cfg: Any) -> list[str]:
    """A run resumed from a checkpoint in one of `training.output_dir`'s ``v<N>-<time>`` folders continues in that
    folder: under `training.add_version: true` (ms-swift's default) it would start a new version folder, with its log
    beginning at the resumed step and the first steps left in the old one. Returns the notice, or nothing."""
    resume, output_dir = cfg.training.get('resume_from_checkpoint'), cfg.training.get('output_dir')
    if not resume or not output_dir or cfg.training.get('add_version', True) is False:
        return []
    folder = Path(str(resume)).resolve().parent
    if not VERSION.match(folder.name) or folder.parent != Path(str(output_dir)).resolve():
        return []
    cfg.rewrite('training', 'output_dir', str(folder))
    cfg.rewrite('training', 'add_version', False)
    return [f'`training.resume_from_checkpoint`: the run continues in its own version folder {folder} '
            '(`training.add_version` starts a new one only for a new run)']
