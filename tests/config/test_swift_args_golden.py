"""Every shipped config maps onto the same ms-swift arguments as recorded in `golden_swift_args.json`.

Refactoring the config code must not change what a valid config trains with. After an intended change, regenerate
the file with `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/config/test_swift_args_golden.py` and review its diff.
"""
import dataclasses
import json
import os
from pathlib import Path

import pytest

from src.config import load_and_validate
from src.datasets.builders import BuildSettings
from src.trainers.swift_args import sft_argument_kwargs
from tests.conftest import REPO

GOLDEN = Path(__file__).with_name('golden_swift_args.json')
MIXTURES = set((REPO / 'configs' / 'dataset_mix').glob('*.yaml'))
CONFIGS = sorted(set((REPO / 'configs').rglob('*.yaml')) - MIXTURES - {REPO / 'configs' / 'base.yaml'})  # a parent


def _portable(value):
    """Absolute paths inside the checkout as `<repo>/...`, so the record holds on any machine; dataclasses as dicts."""
    if dataclasses.is_dataclass(value):
        return _portable(dataclasses.asdict(value))
    if isinstance(value, str):
        return value.replace(str(REPO), '<repo>')
    if isinstance(value, (list, tuple)):
        return [_portable(v) for v in value]
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in sorted(value.items())}
    return value


def _resolved() -> dict[str, dict]:
    """Per config: ms-swift's keyword arguments, the project's trainer settings (post-training) and what the
    datasets are built with."""
    out = {}
    for path in CONFIGS:
        cfg = load_and_validate(path)
        record = sft_argument_kwargs(cfg)
        if cfg.rlhf.get('rlhf_type'):
            record['<project gkd settings>'] = cfg.gkd
        record['<datasets>'] = {'build': BuildSettings.from_config(cfg),
                                'augmentation': cfg.augmentation,
                                'video_env': cfg.video.environment()}
        out[str(path.relative_to(REPO))] = _portable(record)
    return out


def test_shipped_configs_map_to_the_recorded_ms_swift_arguments():
    resolved = _resolved()
    if os.environ.get('UPDATE_GOLDEN'):
        GOLDEN.write_text(json.dumps(resolved, indent=1, sort_keys=True, ensure_ascii=False) + '\n')
        pytest.skip('golden file rewritten')
    golden = json.loads(GOLDEN.read_text())
    assert sorted(resolved) == sorted(golden), 'a config was added or removed: regenerate the golden file'
    for name, kwargs in resolved.items():
        assert kwargs == golden[name], name
