"""Checkpoint completeness: what an interrupted save leaves behind is recognised and set aside, never resumed."""
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from src.run.checkpoints import checkpoint_problem, complete_checkpoints, resume_layout_problem, set_aside_incomplete


def _checkpoint(folder: Path, step: int, adapter: bool = True) -> Path:
    """The files the trainer writes for a LoRA checkpoint at ``step``, with real (tiny) contents."""
    path = folder / f'checkpoint-{step}'
    path.mkdir(parents=True)
    weights = {'lora_A': torch.randn(4, 8), 'lora_B': torch.zeros(8, 4)}
    save_file(weights, path / ('adapter_model.safetensors' if adapter else 'model.safetensors'))
    torch.save({'state': {}}, path / 'optimizer.pt')
    torch.save({'last_epoch': step}, path / 'scheduler.pt')
    torch.save({'cpu': torch.get_rng_state()}, path / 'rng_state.pth')
    (path / 'trainer_state.json').write_text(json.dumps({'global_step': step, 'log_history': []}))
    return path


def test_a_whole_checkpoint_has_no_problem(tmp_path: Path):
    assert checkpoint_problem(_checkpoint(tmp_path, 4)) is None
    assert checkpoint_problem(_checkpoint(tmp_path, 6, adapter=False)) is None


@pytest.mark.parametrize('damage,message', [
    (lambda p: (p / 'trainer_state.json').unlink(), 'has no readable trainer_state.json: its save did not finish'),
    (lambda p: (p / 'trainer_state.json').write_text('{"global_st'), 'has no readable trainer_state.json'),
    (lambda p: (p / 'trainer_state.json').write_text('{"global_step": 2}'), 'says step 2: the folder holds another'),
    (lambda p: (p / 'adapter_model.safetensors').unlink(), 'holds no model or adapter weights'),
    (lambda p: (p / 'adapter_model.safetensors').write_bytes(
        (p / 'adapter_model.safetensors').read_bytes()[:-10]), 'adapter_model.safetensors is truncated'),
    (lambda p: (p / 'adapter_model.safetensors').write_bytes(b''), 'adapter_model.safetensors is truncated (0 bytes)'),
    (lambda p: (p / 'optimizer.pt').write_bytes((p / 'optimizer.pt').read_bytes()[:100]), 'optimizer.pt is truncated'),
])
def test_each_kind_of_interrupted_save_is_named(tmp_path: Path, damage, message: str):
    path = _checkpoint(tmp_path, 4)
    damage(path)
    assert message in checkpoint_problem(path)


def test_sharded_weights_need_every_shard(tmp_path: Path):
    path = _checkpoint(tmp_path, 4, adapter=False)
    (path / 'model.safetensors').rename(path / 'model-00001-of-00002.safetensors')
    (path / 'model.safetensors.index.json').write_text(json.dumps({'weight_map': {
        'a': 'model-00001-of-00002.safetensors', 'b': 'model-00002-of-00002.safetensors'}}))
    assert checkpoint_problem(path) == 'model-00002-of-00002.safetensors is missing'


def test_incomplete_checkpoints_are_moved_out_of_reach(tmp_path: Path, caplog):
    _checkpoint(tmp_path, 2)
    broken = _checkpoint(tmp_path, 4)
    (broken / 'trainer_state.json').unlink()
    assert complete_checkpoints(tmp_path) == [tmp_path / 'checkpoint-2']
    moved = set_aside_incomplete(tmp_path)
    assert moved == [tmp_path / 'incomplete-checkpoint-4']
    assert sorted(p.name for p in tmp_path.glob('checkpoint-*')) == ['checkpoint-2'], 'rotation and resume look here'
    assert 'checkpoint-4 is incomplete (checkpoint-4 has no readable trainer_state.json' in caplog.text
    again = _checkpoint(tmp_path, 4)
    (again / 'trainer_state.json').unlink()
    assert set_aside_incomplete(tmp_path) == [tmp_path / 'incomplete-checkpoint-4.1'], 'an earlier one is kept'


def test_resuming_with_other_tuner_settings_is_named_setting_by_setting(tmp_path: Path):
    from types import SimpleNamespace

    from src.run.checkpoints import resume_mismatches

    checkpoint = _checkpoint(tmp_path, 4)
    saved = {'model': '/models/base', 'tuner_type': 'lora', 'lora_rank': 16, 'lora_alpha': 32,
             'target_modules': ['all-linear'], 'freeze_vit': True, 'lora_dropout': 0.05}
    (checkpoint / 'args.json').write_text(json.dumps(saved))
    now = SimpleNamespace(**{**saved, 'lora_rank': 8, 'freeze_vit': False, 'target_modules': ('all-linear', ),
                             'lora_alpha': 32.0})
    assert resume_mismatches(now, checkpoint) == ["`tuner.freeze_vit`: True in the checkpoint, False now",
                                                  '`tuner.lora_rank`: 16 in the checkpoint, 8 now']
    assert resume_mismatches(SimpleNamespace(**saved), checkpoint) == []
    full = SimpleNamespace(**{**saved, 'tuner_type': 'full', 'lora_rank': 4})
    assert resume_mismatches(full, checkpoint) == ["`tuner.train_type`: 'lora' in the checkpoint, 'full' now"], \
        'LoRA settings are compared only for a LoRA run'


def test_resuming_with_other_optimizer_values_is_named_value_by_value(tmp_path: Path):
    """The optimizer.pt and scheduler.pt a resume loads restore each group's learning rate, its weight decay and
    Adam's settings: a new learning_rate was recorded in resolved_config.yaml and the run went on at the old one."""
    from types import SimpleNamespace

    from src.run.checkpoints import resume_mismatches

    checkpoint = _checkpoint(tmp_path, 4)
    saved = {'tuner_type': 'lora', 'learning_rate': 1e-3, 'weight_decay': 0.1, 'max_steps': 4}
    (checkpoint / 'args.json').write_text(json.dumps(saved))
    now = SimpleNamespace(**{**saved, 'learning_rate': 5e-4, 'max_steps': 8})
    assert resume_mismatches(now, checkpoint, optimizer=True) == [
        '`training.learning_rate`: 0.001 in the checkpoint, 0.0005 now'], 'max_steps may change: it extends the run'
    assert resume_mismatches(now, checkpoint) == [], 'the tuner agrees'


def test_a_checkpoint_without_optimizer_state_is_not_resumed_as_if_it_had_one(tmp_path: Path):
    from src.run.checkpoints import optimizer_state_problem

    checkpoint = _checkpoint(tmp_path, 4)
    assert optimizer_state_problem(checkpoint) is None
    (checkpoint / 'optimizer.pt').unlink()  # what `save_only_model: true` writes
    assert optimizer_state_problem(checkpoint) == (
        f'{checkpoint} holds no optimizer state (saved with `training.save_only_model: true`): resuming would start '
        'the optimizer and the learning-rate schedule over. Start a new stage from its weights instead '
        f'(`tuner.resume_from_checkpoint: {checkpoint}`), or resume from a checkpoint saved with its optimizer')


def test_engine_checkpoints_are_checked_in_their_own_layout(tmp_path: Path):
    ckpt = _checkpoint(tmp_path, 2)
    for rank in (0, 1):
        torch.save({}, ckpt / f'rng_state_{rank}.pth')
    (ckpt / 'latest').write_text('global_step2')
    assert checkpoint_problem(ckpt) == 'latest names global_step2, which is missing'
    (ckpt / 'global_step2').mkdir()
    torch.save({}, ckpt / 'global_step2' / 'zero_pp_rank_0_mp_rank_00_optim_states.pt')
    assert checkpoint_problem(ckpt) == 'global_step2 holds 1 optimizer partitions for 2 ranks'
    (ckpt / 'global_step2' / 'zero_pp_rank_1_mp_rank_00_optim_states.pt').write_bytes(b'PK cut')
    assert checkpoint_problem(ckpt) == 'global_step2/zero_pp_rank_1_mp_rank_00_optim_states.pt is truncated'
    torch.save({}, ckpt / 'global_step2' / 'zero_pp_rank_1_mp_rank_00_optim_states.pt')
    assert checkpoint_problem(ckpt) is None
    (ckpt / 'optimizer_0').mkdir()
    (ckpt / 'optimizer_0' / '__0_0.distcp').write_bytes(b'shard')
    assert checkpoint_problem(ckpt) == 'optimizer_0/.metadata is missing'
    (ckpt / 'optimizer_0' / '.metadata').write_bytes(b'meta')
    assert checkpoint_problem(ckpt) == 'optimizer_0 holds 1 shards for 2 ranks'
    (ckpt / 'optimizer_0' / '__1_0.distcp').write_bytes(b'shard')
    assert checkpoint_problem(ckpt) is None


def _sharded(folder: Path, step: int, ranks: int, engine: str) -> Path:
    """A checkpoint with an engine's sharded state, saved by ``ranks`` processes."""
    path = _checkpoint(folder, step)
    (path / 'rng_state.pth').unlink()
    for rank in range(ranks):
        torch.save({'cpu': torch.get_rng_state()}, path / f'rng_state_{rank}.pth')
    if engine == 'deepspeed':
        (path / 'latest').write_text(f'global_step{step}')
        (path / f'global_step{step}').mkdir()
    else:
        (path / 'optimizer_0').mkdir()
    return path


@pytest.mark.parametrize('engine,flags,name', [('deepspeed', (True, False), 'DeepSpeed (`deepspeed.enabled: true`)'),
                                               ('fsdp', (False, True), 'FSDP (`training.fsdp`)')])
def test_sharded_state_resumes_only_under_its_engine_and_process_count(tmp_path: Path, engine, flags, name):
    path = _sharded(tmp_path, 2, 2, engine)
    assert resume_layout_problem(path, 2, *flags) is None
    assert resume_layout_problem(path, 1, *flags) == (
        f'{path} was saved by 2 processes under {name}, whose optimizer state is split 2 ways; this run has 1. Resume '
        'it with 2 processes (`NPROC_PER_NODE=2 scripts/train.sh ...`)')
    assert resume_layout_problem(path, 2, False, False) == (
        f'{path} was saved under {name}, which this config does not use; resume it under the same engine')
    assert resume_layout_problem(_checkpoint(tmp_path, 4), 3, False, False) is None, 'plain DDP state reshapes'
