"""Inheritance: parents, deep merge, the replace marker, cycles, and disagreeing parents."""
from pathlib import Path

import pytest

from src.config import ConfigError, load_config
from tests.conftest import write_yaml


def test_child_deep_merges_into_parent_and_lists_replace(tmp_path: Path):
    write_yaml(tmp_path / 'base.yaml', {'tuner': {'lora_rank': 8, 'target_modules': ['a', 'b']},
                                        'training': {'seed': 1}})
    child = write_yaml(tmp_path / 'sub' / 'child.yaml', {
        'extends': '../base.yaml',
        'tuner': {'target_modules': ['c']},
    })
    loaded = load_config(child)
    assert loaded.data == {'tuner': {'lora_rank': 8, 'target_modules': ['c']}, 'training': {'seed': 1}}
    assert loaded.origins[('tuner', 'lora_rank')] == tmp_path / 'base.yaml'
    assert loaded.origins[('tuner', 'target_modules')] == child


def test_list_of_parents_merge_in_order(tmp_path: Path):
    write_yaml(tmp_path / 'a.yaml', {'training': {'seed': 1}})
    write_yaml(tmp_path / 'b.yaml', {'tuner': {'lora_rank': 4}})
    child = write_yaml(tmp_path / 'c.yaml', {'extends': ['a.yaml', 'b.yaml']})
    assert load_config(child).data == {'training': {'seed': 1}, 'tuner': {'lora_rank': 4}}


def test_replace_marker_drops_the_parent_mapping(tmp_path: Path):
    write_yaml(tmp_path / 'a.yaml', {'tuner': {'lora_rank': 8, 'lora_alpha': 32}})
    child = write_yaml(tmp_path / 'c.yaml', {'extends': 'a.yaml', 'tuner': {'_replace_': True, 'lora_rank': 2}})
    assert load_config(child).data == {'tuner': {'lora_rank': 2}}


def test_base_config_flag_acts_as_first_parent(tmp_path: Path):
    base = write_yaml(tmp_path / 'base.yaml', {'training': {'seed': 1, 'max_steps': 3}})
    child = write_yaml(tmp_path / 'c.yaml', {'training': {'seed': 2}})
    assert load_config(child, base_config=base).data == {'training': {'seed': 2, 'max_steps': 3}}


def test_cycle_is_an_error_naming_the_chain(tmp_path: Path):
    write_yaml(tmp_path / 'a.yaml', {'extends': 'b.yaml'})
    write_yaml(tmp_path / 'b.yaml', {'extends': 'a.yaml'})
    with pytest.raises(ConfigError) as err:
        load_config(tmp_path / 'a.yaml')
    assert 'cycle' in str(err.value)
    assert f'{tmp_path}/a.yaml -> {tmp_path}/b.yaml -> {tmp_path}/a.yaml' in str(err.value)


def test_missing_parent_names_the_file_that_asked_for_it(tmp_path: Path):
    child = write_yaml(tmp_path / 'c.yaml', {'extends': 'nope.yaml'})
    with pytest.raises(ConfigError, match=r'nope.yaml: config file not found \(named by .*c.yaml\)'):
        load_config(child)


def test_parents_that_disagree_are_an_error(tmp_path: Path):
    write_yaml(tmp_path / 'a.yaml', {'training': {'seed': 1}})
    write_yaml(tmp_path / 'b.yaml', {'training': {'seed': 2}})
    child = write_yaml(tmp_path / 'c.yaml', {'extends': ['a.yaml', 'b.yaml']})
    with pytest.raises(ConfigError, match=r'parents disagree on `training.seed`.*a.yaml sets 1.*b.yaml sets 2'):
        load_config(child)


def test_invalid_yaml_names_the_file(tmp_path: Path):
    path = tmp_path / 'bad.yaml'
    path.write_text('training: [unclosed\n')
    with pytest.raises(ConfigError, match='bad.yaml: invalid YAML'):
        load_config(path)
