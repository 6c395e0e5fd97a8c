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


def test_a_duplicated_section_names_both_lines(tmp_path: Path):
    path = tmp_path / 'dup.yaml'
    path.write_text('training:\n  output_dir: a\n  seed: 1\nmodel:\n  model: m\ntraining:\n  seed: 2\n  seed: 3\n')
    with pytest.raises(ConfigError) as exc:
        load_config(path)
    assert exc.value.problems == [
        f'{path}:6: `training` is set twice in one mapping (first at line 1); YAML would keep only the second. '
        'Merge the two into one',
        f'{path}:8: `seed` is set twice in one mapping (first at line 7); YAML would keep only the second. Merge '
        'the two into one']


def test_a_duplicate_in_a_parent_is_found_too(tmp_path: Path):
    (tmp_path / 'base.yaml').write_text('tuner:\n  lora_rank: 8\n  lora_rank: 16\n')
    child = write_yaml(tmp_path / 'c.yaml', {'extends': 'base.yaml'})
    with pytest.raises(ConfigError, match=r'base.yaml:3: `lora_rank` is set twice in one mapping \(first at line 2\)'):
        load_config(child)


def test_a_file_that_is_not_utf8_names_the_byte(tmp_path: Path):
    path = tmp_path / 'latin1.yaml'
    path.write_bytes('custom:\n  prompts: {dense: "Décris"}\n'.encode('latin-1'))
    with pytest.raises(ConfigError, match=rf'^1 problem in the config:\n  - {path}:2: not UTF-8 text '
                                          r'\(byte 29: 0xe9\); '
                                          'save the file as UTF-8$'):
        load_config(path)
    path.write_bytes('training: {}\n'.encode('utf-16'))
    with pytest.raises(ConfigError, match='the file is UTF-16; save it as UTF-8'):
        load_config(path)


def test_a_utf8_bom_is_fine(tmp_path: Path):
    path = tmp_path / 'bom.yaml'
    path.write_bytes(b'\xef\xbb\xbftraining:\n  seed: 1\n')
    assert load_config(path).data == {'training': {'seed': 1}}


def test_yaml_cannot_build_objects(tmp_path: Path):
    path = tmp_path / 'evil.yaml'
    path.write_text('training: !!python/object/apply:os.system ["touch x"]\n')
    with pytest.raises(ConfigError, match='invalid YAML'):
        load_config(path)
