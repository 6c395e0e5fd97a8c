"""Every YAML shipped in configs/ loads and validates."""
from pathlib import Path

import pytest

from src.config import load_and_validate
from tests.conftest import REPO

CONFIGS = sorted((REPO / 'configs').rglob('*.yaml'))


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(REPO)) for p in CONFIGS])
def test_shipped_config_validates(path: Path):
    cfg = load_and_validate(path)
    assert cfg.custom.train_jsonl
    assert path.read_text().lstrip().startswith('#'), 'every config starts with the command that runs it'
