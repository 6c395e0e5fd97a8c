"""Every YAML shipped in configs/ loads and validates: training configs, and the mixtures in configs/dataset_mix/."""
from pathlib import Path

import pytest

from src.config import load_and_validate
from src.config.fusion import load_fusion_config
from tests.conftest import REPO

MIXTURES = sorted((REPO / 'configs' / 'dataset_mix').glob('*.yaml'))
CONFIGS = sorted(set((REPO / 'configs').rglob('*.yaml')) - set(MIXTURES))


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(REPO)) for p in CONFIGS])
def test_shipped_config_validates(path: Path):
    cfg = load_and_validate(path)
    assert cfg.custom.train_jsonl or cfg.fusion
    assert path.read_text().lstrip().startswith('#'), 'every config starts with the command that runs it'


@pytest.mark.parametrize('path', MIXTURES, ids=[str(p.relative_to(REPO)) for p in MIXTURES])
def test_shipped_mixture_validates(path: Path):
    assert load_fusion_config(path, REPO).sources
    assert path.read_text().lstrip().startswith('#'), 'every mixture starts with the command that builds it'
