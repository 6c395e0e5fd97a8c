"""Validation: every bad input gives an error that names the file, the key and the fix."""
from pathlib import Path

import pytest

from src.config import ConfigError, check_inputs_exist, load_and_validate
from tests.conftest import write_yaml

VALID = {
    'model': {'model': '/tmp/some-model', 'model_type': 'qwen3_vl'},
    'custom': {'train_jsonl': 'train.jsonl', 'build_tiny_model': True},
    'global_max_length': 1024,
}


def _config(tmp_path: Path, **sections) -> Path:
    data = {key: dict(value) if isinstance(value, dict) else value for key, value in VALID.items()}
    for key, value in sections.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return write_yaml(tmp_path / 'cfg.yaml', data)


def _problems(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_and_validate(path)
    return str(err.value)


def test_valid_config_fans_out_global_max_length_and_resolves_paths(tmp_path: Path):
    cfg = load_and_validate(_config(tmp_path, global_max_length=1024, tuner={'train_type': 'lora'}))
    assert cfg.model['max_model_len'] == 1024
    assert cfg.template['max_length'] == 1024
    assert cfg.template['truncation_strategy'] == 'raise'
    assert cfg.custom.train_jsonl == str(tmp_path / 'train.jsonl')


def test_unknown_key_names_file_key_and_closest_match(tmp_path: Path):
    message = _problems(_config(tmp_path, training={'learning_rat': 0.1}))
    assert (f'{tmp_path}/cfg.yaml: `training.learning_rat`: unknown key; did you mean `training.learning_rate`?'
            in message)


def test_key_in_the_wrong_section_says_where_it_belongs(tmp_path: Path):
    assert 'it belongs in section `tuner`' in _problems(_config(tmp_path, training={'freeze_vit': True}))


def test_unknown_top_level_key(tmp_path: Path):
    assert '`trainning`: unknown top-level key; did you mean `training`?' in _problems(
        _config(tmp_path, trainning={'seed': 1}))


def test_a_bare_section_key_at_the_top_says_which_section(tmp_path: Path):
    """The playbook's FAQ writes `learning_rate: 5.0e-5` and `warmup_ratio: 0.1` on their own."""
    message = _problems(_config(tmp_path, learning_rate=5.0e-5, lora_rank=8))
    assert ('`learning_rate`: unknown top-level key; it belongs in a section: write it as `training.learning_rate` '
            '(`training: {learning_rate: ...}`)') in message
    assert 'write it as `tuner.lora_rank`' in message


def test_wrong_type(tmp_path: Path):
    message = _problems(_config(tmp_path, tuner={'lora_rank': 'eight'}))
    assert '`tuner.lora_rank`: expected int, got \'eight\'' in message


def test_conflicting_lengths(tmp_path: Path):
    message = _problems(_config(tmp_path, global_max_length=1024, template={'max_length': 2048}))
    assert '`template.max_length` = 2048 conflicts with `global_max_length` = 1024' in message


@pytest.mark.parametrize('section,key', [('training', 'packing'), ('training', 'packing_length'),
                                         ('template', 'padding_free'), ('custom', 'packing')])
def test_packing_knobs_are_removed(tmp_path: Path, section: str, key: str):
    message = _problems(_config(tmp_path, **{section: {key: True}}))
    assert f'`{section}.{key}`: packing' in message
    assert 'was removed; batches are padded' in message


def test_hard_sample_mining_is_removed(tmp_path: Path):
    message = _problems(_config(tmp_path, custom={'hard_sample_mining': {'enabled': True}}))
    assert '`custom.hard_sample_mining`: hard sample mining was removed' in message


def test_silent_drop_truncation_is_rejected(tmp_path: Path):
    message = _problems(_config(tmp_path, template={'truncation_strategy': 'delete'}))
    assert "`template.truncation_strategy`: expected one of 'raise', 'left', 'right', got 'delete'" in message


def test_scientific_notation_without_a_dot_gets_a_hint(tmp_path: Path):
    message = _problems(_config(tmp_path, training={'learning_rate': '1e-4'}))
    assert 'write 1.0e-4' in message


def test_project_owned_fields_are_rejected(tmp_path: Path):
    message = _problems(_config(tmp_path, data={'dataset': ['x.jsonl']}))
    assert '`data.dataset`: not settable here: the training records come from `custom.train_jsonl`' in message


def test_every_problem_is_reported_at_once(tmp_path: Path):
    message = _problems(_config(tmp_path, training={'packing': True, 'lr': 1.0}, tuner={'lora_rank': 'x'}))
    assert message.startswith('3 problems in the config:')


def test_error_names_the_parent_file_that_set_the_key(tmp_path: Path):
    write_yaml(tmp_path / 'parent.yaml', {'training': {'packing': True}})
    child = _config(tmp_path, extends='parent.yaml')
    assert f'{tmp_path}/parent.yaml: `training.packing`' in _problems(child)


def test_missing_train_jsonl(tmp_path: Path):
    path = write_yaml(tmp_path / 'cfg.yaml', {'model': {'model': '/tmp/m'}, 'custom': {'build_tiny_model': True}})
    problems = _problems(path)
    assert '`custom.train_jsonl` (the training records) or `custom.fusion_config` (a mixture' in problems


def test_missing_inputs_are_reported_before_any_model_loads(tmp_path: Path):
    path = write_yaml(tmp_path / 'cfg.yaml', {'model': {'model': './absent'}, 'custom': {'train_jsonl': 'x.jsonl'},
                                             'global_max_length': 512,
                                             'training': {'resume_from_checkpoint': 'out/checkpoint-3'}})
    cfg = load_and_validate(path)  # a stage-2 config validates before stage 1 has run
    with pytest.raises(ConfigError) as err:
        check_inputs_exist(cfg)
    assert f'{path}: `model.model`: directory {tmp_path}/absent does not exist' in str(err.value)
    assert f'{path}: `custom.train_jsonl`: file {tmp_path}/x.jsonl does not exist' in str(err.value)
    assert (f'{path}: `training.resume_from_checkpoint`: checkpoint {tmp_path}/out/checkpoint-3 does not exist (give '
            'a checkpoint-N folder of the run to continue)') in str(err.value)
