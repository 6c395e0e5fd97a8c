"""DeepSpeed presets and FSDP2 as the machine at hand runs them: precision follows the run's dtype, offload works
without CUDA, and what an engine cannot do here is refused before the model loads, naming the key."""
import json
from pathlib import Path

import pytest

from src.config import ConfigError, load_and_validate
from src.trainers.engines import deepspeed_config, fsdp_precision, swift_presets_dir
from src.trainers.swift_args import cpu_precision_problem, sft_argument_kwargs
from tests.config.test_validate import _config

PRESETS = ['zero0', 'zero1', 'zero2', 'zero2_offload', 'zero3', 'zero3_offload']


def _cfg(tmp_path: Path, preset: str | None = None, dtype: str = 'float32', **sections):
    engine = {'deepspeed': {'enabled': True, 'config': preset}} if preset else {}
    return load_and_validate(_config(tmp_path, model={'model_type': 'qwen3_vl', 'torch_dtype': dtype}, **engine,
                                     **sections))


@pytest.mark.parametrize('preset', PRESETS)
@pytest.mark.parametrize('dtype,fp16,bf16', [('float32', False, False), ('bfloat16', False, True),
                                             ('float16', True, False)])
def test_every_preset_trains_in_the_runs_dtype_on_gpus(tmp_path: Path, preset: str, dtype: str, fp16: bool,
                                                        bf16: bool):
    config = deepspeed_config(_cfg(tmp_path, preset, dtype), cuda=True)
    assert (config['fp16']['enabled'], config['bf16']['enabled']) == (fp16, bf16)
    shipped = json.loads((swift_presets_dir() / f'{preset}.json').read_text())
    assert config['zero_optimization'] == shipped['zero_optimization'], 'on GPUs the preset is as ms-swift ships it'


@pytest.mark.parametrize('preset', PRESETS)
def test_without_cuda_offload_keeps_host_memory_unpinned_and_the_torch_optimizer(tmp_path: Path, preset: str):
    config = deepspeed_config(_cfg(tmp_path, preset, 'bfloat16'), cuda=False)
    assert config['bf16']['enabled'] is True and config['zero_force_ds_cpu_optimizer'] is False
    for key in ('offload_optimizer', 'offload_param'):
        assert config['zero_optimization'].get(key, {}).get('pin_memory', False) is False


def test_fp16_without_cuda_is_refused_naming_where_it_comes_from(tmp_path: Path, monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '2')
    with pytest.raises(ConfigError, match=r'`model.torch_dtype` \(float16\): DeepSpeed trains in fp16 on GPUs only'):
        deepspeed_config(_cfg(tmp_path, 'zero2', 'float16'), cuda=False)
    with pytest.raises(ConfigError, match=r'`training.fp16`: DeepSpeed trains in fp16 on GPUs only'):
        deepspeed_config(_cfg(tmp_path, 'zero3', 'float32', training={'fp16': True}), cuda=False)
    with pytest.raises(ConfigError, match=r'`training.fp16`: FSDP trains in fp16 on GPUs only'):
        fsdp_precision(_cfg(tmp_path, None, 'float32', training={'fsdp': 'fsdp2', 'fp16': True}), cuda=False)


def test_a_json_of_your_own_keeps_what_it_sets(tmp_path: Path):
    own = tmp_path / 'ds.json'
    own.write_text(json.dumps({'bf16': {'enabled': True}, 'zero_optimization': {'stage': 2}}))
    config = deepspeed_config(_cfg(tmp_path, str(own), 'float32'), cuda=True)
    assert config['bf16']['enabled'] is True and config['fp16']['enabled'] is False
    explicit_fp16 = tmp_path / 'fp16.json'
    explicit_fp16.write_text(json.dumps({'fp16': {'enabled': True}, 'zero_optimization': {'stage': 2}}))
    with pytest.raises(ConfigError, match=rf'`{explicit_fp16}`: fp16.enabled: DeepSpeed trains in fp16 on GPUs only'):
        deepspeed_config(_cfg(tmp_path, str(explicit_fp16), 'float32'), cuda=False)


def test_ms_swift_gets_the_resolved_config_and_matching_precision_flags(tmp_path: Path):
    kwargs = sft_argument_kwargs(_cfg(tmp_path, 'zero3_offload', 'bfloat16'))
    assert kwargs['deepspeed']['zero_optimization']['stage'] == 3
    assert (kwargs['bf16'], kwargs['fp16']) == (True, False) == (kwargs['deepspeed']['bf16']['enabled'],
                                                                  kwargs['deepspeed']['fp16']['enabled'])


@pytest.mark.parametrize('training, where', [({}, '`model.torch_dtype` (bfloat16)'),
                                             ({'bf16': True}, '`training.bf16: true`')])
def test_bf16_without_cuda_is_refused_unless_told_to_run_on_the_cpu(tmp_path: Path, training: dict, where: str):
    """The playbook's bf16 snippet on a CPU machine ended in transformers' traceback ("Your setup doesn't support
    bf16/gpu") while ms-swift's arguments were built."""
    cfg = _cfg(tmp_path, None, 'bfloat16', training=training)
    kwargs = sft_argument_kwargs(cfg)
    assert cpu_precision_problem(cfg, kwargs, cuda=False) == (
        f'{cfg.source}: {where}: this machine has no CUDA, and transformers trains in bf16 there only when told to run '
        'on the CPU: set `training.use_cpu: true` (bf16 on a CPU is slow), or train in float32 here '
        '(`model.torch_dtype: float32`)')
    assert cpu_precision_problem(cfg, kwargs, cuda=True) is None
    on_cpu = _cfg(tmp_path, None, 'bfloat16', training={**training, 'use_cpu': True})
    assert cpu_precision_problem(on_cpu, sft_argument_kwargs(on_cpu), cuda=False) is None


def test_fsdp_follows_the_dtype_too(tmp_path: Path, monkeypatch):
    monkeypatch.setenv('WORLD_SIZE', '2')
    kwargs = sft_argument_kwargs(_cfg(tmp_path, None, 'float32', training={'fsdp': 'fsdp2'}))
    assert (kwargs['fp16'], kwargs['bf16']) == (False, False), 'ms-swift alone would turn fp16 on for float32'
    assert fsdp_precision(_cfg(tmp_path, None, 'bfloat16', training={'fsdp': 'fsdp2'}), cuda=False) == {
        'fp16': False, 'bf16': True}


def test_fsdp_needs_torchrun_and_on_cpus_two_processes(tmp_path: Path, monkeypatch):
    monkeypatch.delenv('WORLD_SIZE', raising=False)
    with pytest.raises(ConfigError, match=r'`training.fsdp`: FSDP shards the model across the processes torchrun '
                                          r'starts, and this run was not started by torchrun'):
        _cfg(tmp_path, None, training={'fsdp': 'fsdp2'})
    monkeypatch.setenv('WORLD_SIZE', '1')
    with pytest.raises(ConfigError, match=r'on CPUs FSDP shards the model across at least two processes'):
        fsdp_precision(_cfg(tmp_path, None, training={'fsdp': 'fsdp2'}), cuda=False)
    assert fsdp_precision(_cfg(tmp_path, None, 'bfloat16', training={'fsdp': 'fsdp2'}), cuda=True) == {
        'fp16': False, 'bf16': True}, 'one GPU under torchrun may still run it'


def _counts(split: str = 'training', records: int = 10, text_only: int = 0, videos: int = 0, images: int | None = None):
    """One split's counts; the first of each kind at data.jsonl:4 (text), :2 (video), :1 (image)."""
    from src.datasets.precheck import RecordCounts

    images = records - text_only - videos if images is None else images
    return RecordCounts(split, records, text_only, 'data.jsonl:4' if text_only else None, videos,
                        'data.jsonl:2' if videos else None, images, 'data.jsonl:1' if images else None)


def test_sharded_grpo_refuses_text_only_beside_image_records_and_sft_takes_them(tmp_path: Path, monkeypatch):
    from src.trainers.engines import mixed_modalities_problem

    monkeypatch.setenv('WORLD_SIZE', '2')
    grpo = {'rlhf': {'rlhf_type': 'grpo', 'reward_funcs': ['summary_format'], 'num_generations': 2,
                     'max_completion_length': 64},
            'custom': {'mode': 'summary'}}
    zero3 = _cfg(tmp_path, 'zero3', **grpo)
    problem = mixed_modalities_problem(zero3, _counts(text_only=3))
    assert '`deepspeed.config`: the parameters are sharded across 2 processes, and the training records mix 3 ' \
        'text-only records (the first at data.jsonl:4) with 7 that have images or videos' in problem
    assert '`rlhf.rlhf_type: grpo` builds its own micro-batches' in problem and 'SFT trains such a mix' in problem
    assert mixed_modalities_problem(zero3, _counts()) is None and mixed_modalities_problem(
        zero3, _counts(text_only=10)) is None, 'all images, or all text: every process runs the same modules'
    assert mixed_modalities_problem(_cfg(tmp_path, 'zero2', **grpo), _counts(text_only=3)) is None
    assert '`training.fsdp`' in mixed_modalities_problem(_cfg(tmp_path, None, training={'fsdp': 'fsdp2'}, **grpo),
                                                          _counts(text_only=3))
    assert mixed_modalities_problem(_cfg(tmp_path, 'zero3'), _counts(text_only=3)) is None, 'SFT: stand-in rows'


def test_sharded_sft_on_a_mix_refuses_an_evaluation_that_gathers_predictions(tmp_path: Path, monkeypatch):
    """The stand-in row leaves the processes with different row counts; gathering predictions across them aborted
    (gloo) in accelerate's gather, so the combination is refused before the model loads, naming the key. Only a mix
    in the validation records matters: the evaluation batches hold nothing else."""
    from src.trainers.engines import mixed_modalities_problem

    monkeypatch.setenv('WORLD_SIZE', '2')
    val = {'val_jsonl': str(tmp_path / 'val.jsonl')}
    mix = _counts('validation', text_only=3)
    problem = mixed_modalities_problem(_cfg(tmp_path, 'zero3', training={'eval_metric': 'acc'}, custom=val), mix)
    assert '`training.eval_metric`: `deepspeed.config`: the parameters are sharded across 2 processes, and the ' \
        'validation records mix 3 text-only records (the first at data.jsonl:4)' in problem
    assert 'cannot join them' in problem
    assert 'Leave `training.eval_metric` and `training.predict_with_generate` unset' in problem
    assert '`training.predict_with_generate`: `training.fsdp`' in mixed_modalities_problem(
        _cfg(tmp_path, training={'fsdp': 'fsdp2', 'predict_with_generate': True}, custom=val), mix)
    for quiet in (_cfg(tmp_path, 'zero3', training={'eval_metric': 'acc', 'eval_strategy': 'no'}, custom=val),
                  _cfg(tmp_path, 'zero2', training={'eval_metric': 'acc'}, custom=val),
                  _cfg(tmp_path, 'zero3', custom=val)):
        assert mixed_modalities_problem(quiet, mix) is None
    gathering = _cfg(tmp_path, 'zero3', training={'eval_metric': 'acc'}, custom=val)
    assert mixed_modalities_problem(gathering, _counts('validation')) is None, 'all images: no stand-in rows'
    assert mixed_modalities_problem(gathering, _counts('training', text_only=3)) is None, 'the mix is not evaluated'


def test_sharded_weights_refuse_records_that_differ_in_their_media_once_videos_are_among_them(tmp_path: Path,
                                                                                             monkeypatch):
    """A step where one process holds only images and another only videos stopped in the backward pass under ZeRO-3
    (reproduced), for SFT as for GKD/GRPO; FSDP2 runs the vision tower once more for a micro-batch that also holds
    images. Refused before the model loads, naming the key, the split and the first video."""
    from src.trainers.engines import mixed_modalities_problem

    monkeypatch.setenv('WORLD_SIZE', '2')
    zero3 = _cfg(tmp_path, 'zero3')
    problem = mixed_modalities_problem(zero3, _counts(videos=4))
    assert problem.startswith(f'{tmp_path / "cfg.yaml"}: `deepspeed.config`: the parameters are sharded across 2 '
                              'processes, and the training records differ in their media: of 10, 4 have a video (the '
                              'first at data.jsonl:2), 6 an image (the first at data.jsonl:1)')
    assert 'Use `deepspeed.config: zero2`' in problem and 'train the video records in a run of their own' in problem
    assert '`training.fsdp`' in mixed_modalities_problem(_cfg(tmp_path, None, training={'fsdp': 'fsdp2'}),
                                                          _counts(videos=4))
    assert 'of 10, 10 have a video (the first at data.jsonl:2), 3 an image' in mixed_modalities_problem(
        zero3, _counts(videos=10, images=3)), 'every record a video, some an image as well'
    assert 'of 10, 4 have a video (the first at data.jsonl:2). A step' in mixed_modalities_problem(
        zero3, _counts(videos=4, text_only=6)), 'videos beside text'
    for same in (_counts(videos=10), _counts(videos=10, images=10)):
        assert mixed_modalities_problem(zero3, same) is None, 'every record carries the same media'
    assert mixed_modalities_problem(_cfg(tmp_path, 'zero2'), _counts(videos=4)) is None
    monkeypatch.setenv('WORLD_SIZE', '1')
    assert mixed_modalities_problem(_cfg(tmp_path, 'zero3'), _counts(videos=4)) is None, 'one process'


def test_weights_sharded_over_cpu_processes_are_named_for_the_allocator(tmp_path: Path, monkeypatch):
    """Such a run hands freed blocks back at once (its processes held 3-4x the memory with freed blocks kept)."""
    from src.trainers.engines import weights_sharded_on_cpus

    monkeypatch.setenv('WORLD_SIZE', '2')
    assert weights_sharded_on_cpus(_cfg(tmp_path, 'zero3'), cuda=False) == '`deepspeed.config`'
    assert weights_sharded_on_cpus(_cfg(tmp_path, None, training={'fsdp': 'fsdp2'}), cuda=False) == '`training.fsdp`'
    assert weights_sharded_on_cpus(_cfg(tmp_path, 'zero3'), cuda=True) is None, 'on GPUs: not on the heap'
    assert weights_sharded_on_cpus(_cfg(tmp_path, 'zero2'), cuda=False) is None, 'ZeRO-2 keeps every weight'
    monkeypatch.setenv('WORLD_SIZE', '1')
    assert weights_sharded_on_cpus(_cfg(tmp_path, 'zero3'), cuda=False) is None, 'one process'


def test_tied_weights_are_named_once(tiny_model: Path):
    import torch
    from transformers import AutoModelForImageTextToText

    from src.trainers.engines import tied_copies

    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert model.config.tie_word_embeddings and tied_copies(model) == ['lm_head.weight']
    model.lm_head.weight = torch.nn.Parameter(model.lm_head.weight.detach().clone())  # untied: two weights
    assert tied_copies(model) == []
