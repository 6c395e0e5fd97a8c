"""scripts/train.sh builds the right command for one process, one node with many GPUs, and several nodes."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.trainers.engines import free_port
from tests.conftest import REPO

SCRIPT = REPO / 'scripts' / 'train.sh'
CONFIG = REPO / 'configs' / 'smoke' / 'lora.yaml'
CLEAR = ('NPROC_PER_NODE', 'NNODES', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'CUDA_VISIBLE_DEVICES', 'DEBUG')


def _dry_run(*args: str, cwd: Path = REPO, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if k not in CLEAR}
    result = subprocess.run([str(SCRIPT), *args, '--dry-run'], cwd=cwd, env={**base, 'PYTHON': 'python', **env},
                            capture_output=True, text=True, check=True)
    return result.stderr.strip().splitlines()[-1]


def test_single_process_runs_src_sft(tmp_path: Path):
    assert _dry_run('configs/smoke/lora.yaml', NPROC_PER_NODE='1') == (
        f'+ cd {REPO} && python -m src.sft --config {CONFIG}')


def test_relative_config_resolves_against_the_repo_from_elsewhere(tmp_path: Path):
    assert _dry_run('configs/smoke/lora.yaml', cwd=tmp_path, NPROC_PER_NODE='1').endswith(f'--config {CONFIG}')


@pytest.mark.parametrize('value', ['true', '1', 'yes', 'TRUE', 'Yes'])
def test_debug_flag(value: str):
    assert _dry_run('configs/smoke/lora.yaml', NPROC_PER_NODE='1', DEBUG=value).endswith('--debug')


@pytest.mark.parametrize('value', ['', 'false', '0', 'no'])
def test_debug_off(value: str):
    assert not _dry_run('configs/smoke/lora.yaml', NPROC_PER_NODE='1', DEBUG=value).endswith('--debug')


@pytest.mark.parametrize('value', ['ture', '2', 'on'])
def test_debug_value_not_understood_is_an_error(value: str):
    env = {k: v for k, v in os.environ.items() if k not in CLEAR}
    result = subprocess.run([str(SCRIPT), 'configs/smoke/lora.yaml', '--dry-run'], cwd=REPO, capture_output=True,
                            text=True, env={**env, 'DEBUG': value, 'NPROC_PER_NODE': '1'})
    assert result.returncode == 2
    assert f'DEBUG={value} is not understood; use DEBUG=true' in result.stderr


def _repo_copy(tmp_path: Path, venv: bool) -> Path:
    """The two launcher scripts and a config in a bare folder laid out like the repository."""
    (tmp_path / 'scripts').mkdir()
    for name in ('train.sh', 'project_python.sh'):
        (tmp_path / 'scripts' / name).write_bytes((REPO / 'scripts' / name).read_bytes())
    (tmp_path / 'scripts' / 'train.sh').chmod(0o755)
    (tmp_path / 'x.yaml').write_text('{}\n')
    if venv:
        (tmp_path / '.venv' / 'bin').mkdir(parents=True)
        (tmp_path / '.venv' / 'bin' / 'python').symlink_to(sys.executable)
    return tmp_path


@pytest.mark.parametrize('venv,python,expected', [
    (True, None, '{repo}/.venv/bin/python'),
    (False, None, 'python3'),
    (True, '/opt/py/bin/python', '/opt/py/bin/python'),
])
def test_the_project_python_is_found_without_activating(tmp_path: Path, venv: bool, python: str | None,
                                                        expected: str):
    repo = _repo_copy(tmp_path, venv)
    env = {k: v for k, v in os.environ.items() if k not in CLEAR + ('PYTHON', )}
    if python:
        env['PYTHON'] = python
    result = subprocess.run([str(repo / 'scripts' / 'train.sh'), 'x.yaml', '--dry-run'], cwd=repo, env=env,
                            capture_output=True, text=True, check=True)
    assert result.stderr.strip().splitlines()[-1] == (
        f'+ cd {repo} && {expected.format(repo=repo)} -m src.sft --config {repo}/x.yaml')


def test_one_node_counts_visible_gpus():
    assert _dry_run('configs/smoke/lora.yaml', CUDA_VISIBLE_DEVICES='0,1,2,3') == (
        f'+ cd {REPO} && python -m torch.distributed.run --nnodes 1 --node_rank 0 --nproc_per_node 4 '
        f'--master_addr 127.0.0.1 --master_port 29500 -m src.sft --config {CONFIG}')


def test_multi_node():
    command = _dry_run('configs/smoke/lora.yaml', NNODES='2', NODE_RANK='1', NPROC_PER_NODE='8',
                       MASTER_ADDR='10.0.0.1', MASTER_PORT='29600')
    assert '--nnodes 2 --node_rank 1 --nproc_per_node 8 --master_addr 10.0.0.1 --master_port 29600' in command


@pytest.mark.parametrize('args,message', [(['--lr', '1'], 'settings belong in the YAML config'),
                                          (['nope.yaml'], 'config not found: nope.yaml')])
def test_bad_arguments(args, message):
    result = subprocess.run([str(SCRIPT), *args], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2 and message in result.stderr


def test_help_documents_every_variable():
    text = subprocess.run([str(SCRIPT), '--help'], capture_output=True, text=True, check=True).stdout
    for variable in ('DEBUG', 'NPROC_PER_NODE', 'NNODES', 'NODE_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'PYTHON',
                     'TOKENIZERS_PARALLELISM'):
        assert variable in text


@pytest.mark.slow
def test_two_processes_on_cpu_train_and_write_one_checkpoint(make_config, tmp_path: Path):
    import json

    # The best checkpoint is chosen on token accuracy, a metric ms-swift reduces across ranks: a rank that decided
    # differently would hang the run at the next collective.
    config = make_config('lora.yaml', name='ddp', training={'metric_for_best_model': 'token_acc',
                                                            'greater_is_better': True})
    base = {k: v for k, v in os.environ.items() if k not in CLEAR}
    env = {**base, 'PYTHON': sys.executable, 'NPROC_PER_NODE': '2', 'MASTER_PORT': str(free_port())}
    result = subprocess.run([str(SCRIPT), str(config)], cwd=REPO, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    out = tmp_path / 'ddp'
    assert 'world_size: 2' in (out / 'run.log').read_text()
    assert [p.name for p in out.glob('checkpoint-*')] == ['checkpoint-4']
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    assert len([r for r in rows if 'train/loss' in r]) == 4, 'only rank 0 writes logging.jsonl'
    assert rows[-1]['train/best_model_checkpoint'].endswith('checkpoint-4')
    assert any('eval/token_acc' in r for r in rows)
    # Again into the finished run: process 0 refuses the folder, and process 1 stops with the same line instead of
    # loading the model and dying in its first collective with a traceback.
    again = subprocess.run([str(SCRIPT), str(config)], cwd=REPO, env=env, capture_output=True, text=True)
    assert again.returncode != 0
    assert again.stderr.count(f'error: 1 problem in the config:\n  - {out} already holds a run') == 2, again.stderr
    assert '[rank1]: Traceback' not in again.stderr and 'Connection closed by peer' not in again.stderr


@pytest.mark.parametrize('env,message', [
    ({'NPROC_PER_NODE': 'abc'}, 'NPROC_PER_NODE=abc is not a whole number of at least 1'),
    ({'NPROC_PER_NODE': '0'}, 'NPROC_PER_NODE=0 is not a whole number of at least 1'),
    ({'NPROC_PER_NODE': '1.5'}, 'NPROC_PER_NODE=1.5 is not a whole number of at least 1'),
    ({'NPROC_PER_NODE': '-2'}, 'NPROC_PER_NODE=-2 is not a whole number of at least 1'),
    ({'NNODES': 'two'}, 'NNODES=two is not a whole number of at least 1'),
    ({'NNODES': '2', 'NODE_RANK': '2'}, 'NODE_RANK=2 is not a whole number from 0 to 1'),
    ({'MASTER_PORT': '70000'}, 'MASTER_PORT=70000 is not a whole number from 1 to 65535'),
    ({'OMP_NUM_THREADS': '0'}, 'OMP_NUM_THREADS=0 is not a whole number of at least 1'),
])
def test_a_launcher_variable_that_is_not_a_whole_number_in_range_is_one_line(env: dict, message: str):
    base = {k: v for k, v in os.environ.items() if k not in CLEAR + ('OMP_NUM_THREADS', )}
    done = subprocess.run([str(SCRIPT), 'configs/smoke/lora.yaml', '--dry-run'], cwd=REPO,
                          env={**base, 'PYTHON': 'python', **env}, capture_output=True, text=True)
    assert done.returncode == 2 and done.stderr.strip() == f'train.sh: {message}'


def test_an_empty_launcher_variable_means_its_default():
    assert _dry_run('configs/smoke/lora.yaml', NPROC_PER_NODE='', NNODES='').endswith(f'--config {CONFIG}')
