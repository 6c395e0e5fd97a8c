"""Every YAML shipped in configs/ loads and validates: training configs, and the mixtures in configs/dataset_mix/."""
from pathlib import Path

import pytest
import yaml

from src.config import load_and_validate
from src.config.fusion import load_fusion_config
from tests.conftest import REPO

MIXTURES = sorted((REPO / 'configs' / 'dataset_mix').glob('*.yaml'))
RUNTIME = REPO / 'configs' / 'base.yaml'
CONFIGS = sorted(set((REPO / 'configs').rglob('*.yaml')) - set(MIXTURES) - {RUNTIME})
# What configs/base.yaml may set: the playbook's "non-tunable runtime defaults only (dtype, attention impl, template)".
RUNTIME_KEYS = {'model': {'model_type', 'torch_dtype', 'attn_impl'}, 'template': {'template', 'truncation_strategy'}}


@pytest.mark.parametrize('path', CONFIGS, ids=[str(p.relative_to(REPO)) for p in CONFIGS])
def test_shipped_config_validates(path: Path):
    cfg = load_and_validate(path)
    assert cfg.custom.train_jsonl or cfg.fusion
    assert path.read_text().lstrip().startswith('#'), 'every config starts with the command that runs it'


@pytest.mark.parametrize('path', MIXTURES, ids=[str(p.relative_to(REPO)) for p in MIXTURES])
def test_shipped_mixture_validates(path: Path):
    assert load_fusion_config(path, REPO).sources
    assert path.read_text().lstrip().startswith('#'), 'every mixture starts with the command that builds it'


def test_base_yaml_holds_runtime_defaults_only_and_the_recipes_inherit_them():
    data = yaml.safe_load(RUNTIME.read_text())
    assert {section: set(values) for section, values in data.items()} == RUNTIME_KEYS
    recipes = [p for p in CONFIGS if 'smoke' not in p.parts and 'qwen2_5' not in p.name]
    for path in recipes:
        cfg = load_and_validate(path)
        assert cfg.template['template'] == 'qwen3_vl' and cfg.model['torch_dtype'] == 'bfloat16', path
