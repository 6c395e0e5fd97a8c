"""Batch arithmetic and distributed back-ends are checked before launch."""
from pathlib import Path

import pytest

from src.config import ConfigError, load_and_validate
from src.trainers.swift_args import sft_argument_kwargs
from tests.conftest import write_yaml

BASE = {'model': {'model': '/tmp/some-model'}, 'custom': {'train_jsonl': 'train.jsonl', 'build_tiny_model': True},
        'global_max_length': 1024}


def _cfg(tmp_path: Path, **sections):
    data = {**BASE, **sections}
    return load_and_validate(write_yaml(tmp_path / 'cfg.yaml', data))


def _problems(tmp_path: Path, **sections) -> str:
    with pytest.raises(ConfigError) as err:
        _cfg(tmp_path, **sections)
    return str(err.value)


@pytest.mark.parametrize('world,expected', [('1', 8), ('2', 4), ('4', 2)])
def test_effective_batch_size_derives_gradient_accumulation(tmp_path: Path, monkeypatch, world: str, expected: int):
    monkeypatch.setenv('WORLD_SIZE', world)
    cfg = _cfg(tmp_path, training={'effective_batch_size': 32, 'per_device_train_batch_size': 4})
    kwargs = sft_argument_kwargs(cfg)
    assert kwargs['gradient_accumulation_steps'] == expected and 'effective_batch_size' not in kwargs


def test_effective_batch_size_must_divide(tmp_path: Path, monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '3')
    message = _problems(tmp_path, training={'effective_batch_size': 32, 'per_device_train_batch_size': 4})
    assert '32 is not a positive multiple of per_device_train_batch_size (4) x world size (3) = 12' in message


def test_effective_batch_size_and_accumulation_in_one_file_are_refused(tmp_path: Path):
    message = _problems(tmp_path, training={'effective_batch_size': 8, 'gradient_accumulation_steps': 2})
    assert 'cfg.yaml: `training.effective_batch_size` and `training.gradient_accumulation_steps` both set the global ' \
           'batch; set one (in cfg.yaml: the other as null)' in message


def test_the_more_specific_file_wins_between_the_two_spellings_of_the_global_batch(tmp_path: Path):
    """scale.md's snippet (`effective_batch_size: 64`) over a recipe that sets `gradient_accumulation_steps` was
    refused as setting both, naming neither the recipe nor what to write; a child sets either, as any key."""
    recipe = write_yaml(tmp_path / 'recipe.yaml', {**BASE, 'training': {'gradient_accumulation_steps': 2}})
    child = write_yaml(tmp_path / 'child.yaml', {'extends': str(recipe), 'training': {
        'per_device_train_batch_size': 4, 'effective_batch_size': 64}})
    cfg = load_and_validate(child)
    assert sft_argument_kwargs(cfg)['gradient_accumulation_steps'] == 16
    assert any(w.endswith('child.yaml: `training.effective_batch_size`: replaces the '
                          f'`training.gradient_accumulation_steps` of {recipe} (the two set one thing: the global '
                          'batch)') for w in cfg.warnings), cfg.warnings
    recipe.write_text(recipe.read_text().replace('gradient_accumulation_steps: 2', 'effective_batch_size: 64'))
    child.write_text(child.read_text().replace('effective_batch_size: 64', 'gradient_accumulation_steps: 3'))
    assert sft_argument_kwargs(load_and_validate(child))['gradient_accumulation_steps'] == 3
    # two parents, one each: neither is the run's own; which was meant is not known
    other = write_yaml(tmp_path / 'other.yaml', {'training': {'gradient_accumulation_steps': 2}})
    both = write_yaml(tmp_path / 'both.yaml', {'extends': [str(other), str(recipe)]})
    with pytest.raises(ConfigError) as err:
        load_and_validate(both)
    assert (f'{recipe} and {other}: `training.effective_batch_size` and `training.gradient_accumulation_steps` both '
            'set the global batch; set one (in both.yaml: the other as null)') in str(err.value)


def test_llm_lr_maps_onto_the_multimodal_optimizer(tmp_path: Path):
    kwargs = sft_argument_kwargs(_cfg(tmp_path, training={'learning_rate': 1.0e-4, 'llm_lr': 2.0e-5,
                                                          'aligner_lr': 5.0e-4}))
    assert (kwargs['optimizer'], kwargs['learning_rate'], kwargs['vit_lr'], kwargs['aligner_lr']) == (
        'multimodal', 2.0e-5, 1.0e-4, 5.0e-4)


def test_llm_lr_needs_a_default_for_the_others(tmp_path: Path):
    assert 'with `llm_lr`, set `learning_rate`' in _problems(tmp_path, training={'llm_lr': 2.0e-5})


@pytest.mark.parametrize('sections,message', [
    ({'deepspeed': {'enabled': True}, 'training': {'fsdp': 'fsdp2'}}, 'FSDP and DeepSpeed exclusive'),
    ({'deepspeed': {'enabled': True, 'config': 'zero4'}}, "unknown preset 'zero4'"),
    ({'deepspeed': {'enabled': True, 'config': 'missing.json'}}, 'missing.json does not exist'),
    ({'deepspeed': {'enabled': True, 'config': 'zero3'}, 'model': {'model': '/tmp/m', 'quant_method': 'bnb',
                                                                   'quant_bits': 4}},
     'ZeRO-3 cannot partition quantized'),
    ({'deepspeed': {'enabled': True}, 'model': {'model': '/tmp/m', 'device_map': 'auto'}},
     'DeepSpeed places the model itself'),
    ({'training': {'fsdp': 'fsdp3'}}, "use `fsdp2` or an existing FSDP JSON config, got 'fsdp3'"),
    ({'training': {'fsdp': 'fsdp2', 'gradient_checkpointing': True}}, 'under FSDP2 use its activation checkpointing'),
    ({'training': {'deepspeed': 'zero2'}}, 'use the `deepspeed` section'),
])
def test_invalid_distributed_combinations_fail_before_launch(tmp_path: Path, sections, message: str):
    assert message in _problems(tmp_path, **sections)


def test_deepspeed_preset_maps_to_ms_swift_resolved_for_the_run(tmp_path: Path):
    kwargs = sft_argument_kwargs(_cfg(tmp_path, deepspeed={'enabled': True, 'config': 'zero3'}))
    assert kwargs['deepspeed']['zero_optimization']['stage'] == 3


def test_ddp_backend_in_a_single_process_run_is_an_error(tmp_path, monkeypatch):
    from src.config import ConfigError, load_and_validate
    from tests.config.test_validate import _config

    monkeypatch.delenv('WORLD_SIZE', raising=False)
    with pytest.raises(ConfigError, match=r'`training.ddp_backend`: applies to multi-process runs, and this one has '
                                          r'one '
                                          r'process \(WORLD_SIZE unset\); launch it with `NPROC_PER_NODE=2 '
                                          r'scripts/train.sh CONFIG`'):
        load_and_validate(_config(tmp_path, training={'ddp_backend': 'gloo'}))
    monkeypatch.setenv('WORLD_SIZE', '2')
    load_and_validate(_config(tmp_path, training={'ddp_backend': 'gloo'}))


def test_cpu_processes_form_one_data_parallel_group():
    from src.swift_seams import cpu_process_group

    assert cpu_process_group(2, cuda=False) == {'use_cpu': True, 'ddp_backend': 'gloo'}
    assert cpu_process_group(2, cuda=True) == {} and cpu_process_group(1, cuda=False) == {}


def test_accelerate_still_needs_use_cpu_for_a_cpu_process_group(monkeypatch):
    """The upstream behaviour `swift_seams.cpu_process_group` corrects (accelerate 1.15): under torchrun on a machine
    without CUDA, a state made without `cpu=True` is not distributed at all. When this fails, accelerate handles CPUs
    by itself: remove the correction rather than doubling it."""
    import torch
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType

    if torch.cuda.is_available():
        pytest.skip('the correction is for machines without CUDA')
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setenv('WORLD_SIZE', '2')
    assert PartialState._prepare_backend(None, cpu=False)[1] == DistributedType.NO
    assert PartialState._prepare_backend(None, cpu=True) == ('gloo', DistributedType.MULTI_CPU)
