"""Out-of-range numbers and unknown names fail validation, all in one report, before anything loads."""
from pathlib import Path

import pytest

from src.config import ConfigError, load_and_validate
from src.config.bounds import Bound
from tests.config.test_validate import _config


def _problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as err:
        load_and_validate(path)
    return err.value.problems


@pytest.mark.parametrize('section,key,value,message', [
    ('training', 'learning_rate', -1.0e-4, 'must be > 0, got -0.0001'),
    ('training', 'learning_rate', 0, 'must be > 0, got 0'),
    ('tuner', 'lora_rank', 0, 'must be >= 1, got 0'),
    ('tuner', 'lora_dropout', 2.0, 'must be in [0, 1), got 2.0'),
    ('training', 'per_device_train_batch_size', 0, 'must be >= 1, got 0'),
    ('training', 'warmup_ratio', 5, 'must be in [0, 1], got 5'),
    ('training', 'max_steps', 0, 'must be >= 1 or -1, got 0'),
    ('training', 'max_steps', -2, 'must be >= 1 or -1, got -2'),
    ('training', 'gradient_accumulation_steps', 0, 'must be >= 1, got 0'),
    ('training', 'lr_scheduler_type', 'cosin', "'cosin' is not one of linear, cosine, "),
    ('training', 'optim', 'adamw', "'adamw' is not one of "),
    ('training', 'eval_strategy', 'step', "'step' is not one of no, steps, epoch; did you mean 'steps'?"),
    ('tuner', 'train_type', 'qlora', "'qlora' is not available: QLoRA is `tuner.train_type: lora` with "
                                     '`model.quant_method: bnb` and `model.quant_bits: 4`'),
    ('tuner', 'train_type', 'lroa', "'lroa' is not one of adalora, "),
    ('model', 'model_type', 'qwen3vl', "'qwen3vl' is not one of 237 names, see ms-swift's docs; did you mean "
                                       "'qwen3_vl'?"),
])
def test_each_bad_value_is_named_with_what_it_must_be(tmp_path: Path, section, key, value, message):
    [problem] = _problems(_config(tmp_path, **{section: {key: value}}))
    assert problem.startswith(f'{tmp_path / "cfg.yaml"}: `{section}.{key}`: {message}')


def test_every_bad_value_is_reported_at_once(tmp_path: Path):
    problems = _problems(_config(tmp_path, training={'learning_rate': -1.0, 'max_steps': 0},
                                 tuner={'lora_rank': 0, 'train_type': 'qlora'}))
    assert len(problems) == 4


def test_valid_edges_pass(tmp_path: Path):
    load_and_validate(_config(tmp_path, training={'max_steps': -1, 'warmup_ratio': 1.0, 'learning_rate': 1.0e-9},
                              tuner={'lora_dropout': 0.0, 'lora_rank': 1, 'train_type': 'full'}))


def test_bounds_read_as_written():
    assert [str(b) for b in (Bound(0, low_inclusive=False), Bound(0, 1, high_inclusive=False), Bound(1, also=(-1, )))] \
        == ['> 0', 'in [0, 1)', '>= 1 or -1']


def test_video_sampling_is_checked_and_becomes_the_environment_qwen_vl_utils_reads(tmp_path: Path):
    cfg = load_and_validate(_config(tmp_path, custom={'video': {'fps': 2, 'max_frames': 16}}))
    assert cfg.video.environment() == {'FPS': '2.0', 'FPS_MAX_FRAMES': '16'}
    problems = _problems(_config(tmp_path, custom={'video': {'fps': 0, 'max_frame': 4, 'min_pixels': 1.5}}))
    where = f'{tmp_path / "cfg.yaml"}: `custom.video'
    assert problems == [f'{where}.fps`: must be > 0, got 0',
                        f'{where}.max_frame`: unknown key; valid: fps, min_frames, max_frames, min_pixels, max_pixels',
                        f'{where}.min_pixels`: must be a whole number >= 1, got 1.5']
    [problem] = _problems(_config(tmp_path, custom={'video': {'min_frames': 8, 'max_frames': 4}}))
    assert problem == f'{where}.max_frames`: `min_frames` (8) is above `max_frames` (4); the range would be empty'
