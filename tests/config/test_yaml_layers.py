"""How layers meet: an empty child section never wipes (or pretends to keep) its parent, `_replace_` is a boolean,
YAML's own merge keys load, and an error in a value names the file that set that value."""
from pathlib import Path

import pytest

from src.config import ConfigError, load_and_validate
from src.config.loader import load_config
from tests.config.test_validate import VALID


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _base(tmp_path: Path) -> Path:
    """A valid parent (as the users write it: by hand, with comments) with a `training` and an augmentation block."""
    lines = ['global_max_length: 512', 'model:', f'  model: {VALID["model"]["model"]}', '  model_type: qwen3_vl',
             'training:', '  learning_rate: 1.0e-4', '  max_steps: 10', 'custom:', '  train_jsonl: train.jsonl',
             '  augmentation:', '    fill: 0', '    ops:', '      - {name: hflip, prob: 0.5}']
    return _write(tmp_path / 'base.yaml', '\n'.join(lines) + '\n')


def _problems(path: Path) -> str:
    with pytest.raises(ConfigError) as err:
        load_and_validate(path)
    return str(err.value)


def test_a_section_whose_lines_are_all_commented_out_is_an_error_not_a_silent_wipe(tmp_path: Path):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', 'extends: base.yaml\ntraining:\n  # learning_rate: 1.0e-3\n'
                                            '  # max_steps: 5\n')
    text = _problems(child)
    assert (f'{child}: `training` is null (a key with nothing under it, e.g. every line commented out), but '
            f'{tmp_path / "base.yaml"} sets it to a mapping; delete the `training:` line to inherit that mapping, or '
            'write `training: {_replace_: true}` to clear it') in text


@pytest.mark.parametrize('empty', ['null', '{}'])
def test_an_empty_nested_mapping_over_a_parent_one_is_an_error_too(tmp_path: Path, empty: str):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', f'extends: base.yaml\ncustom:\n  augmentation: {empty}\n')
    assert '`custom.augmentation` is ' in _problems(child)


def test_replace_true_is_how_a_child_clears_a_parent_mapping(tmp_path: Path):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', 'extends: base.yaml\ncustom:\n  augmentation: {_replace_: true}\n')
    assert load_and_validate(child).augmentation is None


def test_an_empty_section_with_nothing_to_inherit_is_just_empty(tmp_path: Path):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', 'extends: base.yaml\nrlhf:\ntemplate: {}\n')
    cfg = load_and_validate(child)
    assert cfg.rlhf == {} and cfg.training['learning_rate'] == 1.0e-4


def test_a_null_leaf_is_a_value_not_an_error(tmp_path: Path):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', 'extends: base.yaml\ntraining:\n  learning_rate: null\n')
    assert load_and_validate(child).training['learning_rate'] is None


@pytest.mark.parametrize('marker', ['"true"', '1', 'replace', 'null'])
def test_the_replace_marker_must_be_a_boolean(tmp_path: Path, marker: str):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', f'extends: base.yaml\ncustom:\n  augmentation:\n    _replace_: {marker}\n'
                                            '    ops: []\n')
    assert f'{child}: `custom.augmentation._replace_` must be true or false' in str(
        pytest.raises(ConfigError, load_config, child).value)


def test_yaml_merge_keys_load_and_the_keys_beside_them_win(tmp_path: Path):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', '\n'.join([
        'extends: base.yaml',
        'x-schedule: &schedule',
        '  learning_rate: 3.0e-4',
        '  warmup_ratio: 0.05',
        '  max_steps: 20',
        'training:',
        '  <<: *schedule',
        '  max_steps: 30',
    ]) + '\n')
    cfg = load_and_validate(child)
    assert (cfg.training['learning_rate'], cfg.training['warmup_ratio'], cfg.training['max_steps']) == (3.0e-4, 0.05,
                                                                                                         30)


def test_a_value_error_names_the_file_that_set_the_value_not_its_first_siblings(tmp_path: Path):
    base = _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', 'extends: base.yaml\ncustom:\n  augmentation:\n    fill: 300\n'
                                            '  video:\n    fps: 2.0\n')
    grandchild = _write(tmp_path / 'grandchild.yaml', 'extends: child.yaml\ncustom:\n  video:\n    max_frames: 0\n')
    text = _problems(grandchild)
    assert f'{child}: `custom.augmentation.fill`: a grey level: must be in [0, 255], got 300' in text
    assert f'{grandchild}: `custom.video.max_frames`: must be >= 1, got 0' in text
    assert str(base) + ':' not in text, 'base.yaml set neither value'


def test_an_error_inside_a_list_names_the_file_that_wrote_the_list(tmp_path: Path):
    _base(tmp_path)
    child = _write(tmp_path / 'child.yaml', 'extends: base.yaml\ncustom:\n  augmentation:\n'
                                            '    ops: [{name: rotate, prob: 1.5}]\n')
    assert f'{child}: `custom.augmentation.ops[0].prob`: (rotate) must be in [0, 1], got 1.5' in _problems(child)
