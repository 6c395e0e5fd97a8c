"""One-step smokes of benchmarks/kd_overhead.py, so the benchmark keeps working (its timings are not checked)."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def run_benchmark(repo_copy: Path, *args: str):
    done = subprocess.run([sys.executable, 'benchmarks/kd_overhead.py', '--steps', '1', *args], cwd=repo_copy,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'ratio GKD / SFT' in done.stdout and 'run sft: ' in done.stdout
    every_run = '--runs' not in args
    assert ('ratio without JSD' in done.stdout and 'top-64 GKD' in done.stdout) == every_run
    return done.stdout


def test_kd_overhead_runs_one_step_of_the_smoke_recipe(tmp_path, repo_copy):
    assert 'smoke Qwen3-VL on CPU' in run_benchmark(repo_copy, '--dir', str(tmp_path))


def test_the_real_size_path_writes_a_checkpoint_and_trains_the_4b_recipe(tmp_path, repo_copy):
    """``--arch 2b|4b|8b`` needs a GPU; ``--arch tiny`` takes the same path: random checkpoint, generated records,
    configs/qwen3_vl_4b/lora.yaml with the benchmark's batch; ``--runs`` as the GPU suite gives it."""
    stdout = run_benchmark(repo_copy, '--arch', 'tiny', '--image', '64', '64', '--objects', '1', '2', '--batch', '1',
                           '--grad-accum', '2', '--dir', str(tmp_path), '--runs', 'sft', 'gkd')
    assert 'tiny Qwen3-VL on CPU' in stdout and '1 steps of 2 samples' in stdout
    config = json.loads((tmp_path / 'qwen3-vl-tiny-random-float32' / 'config.json').read_text())
    assert config['text_config']['hidden_size'] == 64 and config['vision_config']['deepstack_visual_indexes'] == [0, 1]
    args = json.loads((tmp_path / 'gkd' / 'args.json').read_text())
    assert args['lora_rank'] == 16 and args['gradient_checkpointing'] is True and args['rlhf_type'] == 'gkd'


def test_generated_records_longer_than_the_recipe_get_a_length_that_fits(tmp_path, capsys):
    """`--arch tiny` with the default objects once died mid-training on its own record (4,103 tokens > 4,096): the
    benchmark now measures its records and raises the runs' length to fit."""
    import argparse
    import sys

    import yaml

    from src.config import load_and_validate
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / 'benchmarks'))
    from kd_overhead import longest_record, real_size_recipe

    flags = argparse.Namespace(arch='tiny', image=[64, 64], objects=[120, 130], steps=1, batch=1, grad_accum=1)
    recipe, model, _ = real_size_recipe(flags, tmp_path)
    length = yaml.safe_load(recipe.read_text())['global_max_length']
    data = load_and_validate(recipe).custom.train_jsonl
    assert 4096 < longest_record(data, model) <= length and length % 256 == 0
    assert f'global_max_length {length} for these runs' in capsys.readouterr().out


def test_the_gpu_recipe_without_batch_flags_inherits_the_recipes_training_section(tmp_path, monkeypatch):
    """On a GPU with no ``--batch`` / ``--grad-accum`` the overlay had ``training: {}``, which the loader refuses as
    clearing the recipe's section: the GPU suite's entrypoint step died before its first step on an H200."""
    import argparse
    import sys

    import torch

    from src.config import load_and_validate
    from tests.conftest import REPO

    sys.path.insert(0, str(REPO / 'benchmarks'))
    from kd_overhead import real_size_recipe

    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr(torch.cuda, 'get_device_name', lambda *_: 'a GPU')
    flags = argparse.Namespace(arch='tiny', image=[64, 64], objects=[1, 2], steps=1, batch=None, grad_accum=None,
                               dtype='float32')
    recipe, _, device = real_size_recipe(flags, tmp_path)
    config = load_and_validate(recipe)
    assert device.startswith('a GPU') and config.training['per_device_train_batch_size'] >= 1
