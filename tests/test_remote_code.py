"""A checkpoint that ships Python code (`auto_map`) runs none of it unless the config opts in."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import ConfigError, check_inputs_exist, load_and_validate
from src.config.remote_code import remote_code, remote_code_notices
from tests.conftest import REPO, write_yaml

EVIL = '''from pathlib import Path
Path({marker!r}).write_text('ran')
from transformers import Qwen3VLConfig as EvilConfig  # the real class: the checkpoint still loads once trusted
'''


@pytest.fixture
def planted(tiny_model: Path, tmp_path: Path) -> tuple[Path, Path]:
    """(a copy of the tiny model whose config.json maps AutoConfig to its own configuration_evil.py, the marker
    file that module writes when it is imported)."""
    folder = tmp_path / 'planted'
    shutil.copytree(tiny_model, folder)
    marker = tmp_path / 'MARKER'
    (folder / 'configuration_evil.py').write_text(EVIL.format(marker=str(marker)))
    config = json.loads((folder / 'config.json').read_text())
    config['auto_map'] = {'AutoConfig': 'configuration_evil.EvilConfig'}
    (folder / 'config.json').write_text(json.dumps(config))
    return folder, marker


def test_auto_map_entries_are_found(planted):
    folder, _ = planted
    [entry] = remote_code(folder)
    assert (entry.file.name, entry.auto_class, entry.module_file) == ('config.json', 'AutoConfig',
                                                                        'configuration_evil.py')


def test_a_checkpoint_asking_for_its_code_is_refused_before_anything_loads(planted, make_config):
    folder, marker = planted
    config = make_config('lora.yaml', model={'model': str(folder)})
    done = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(config)], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert (f'{folder / "config.json"}: `auto_map.AutoConfig` asks to run `configuration_evil.EvilConfig` from '
            'configuration_evil.py in the checkpoint; Qwen-VL checkpoints never need code of their own. Set '
            '`model.trust_remote_code: true` only if you trust that code') in done.stderr
    assert not marker.exists()


def test_a_teacher_has_its_own_opt_in(planted, make_config, tiny_model: Path):
    folder, marker = planted
    cfg = load_and_validate(make_config('gkd.yaml', rlhf={'teacher_model': str(folder)},
                                        model={'trust_remote_code': True}))
    with pytest.raises(ConfigError, match=r'Set `rlhf.teacher_trust_remote_code: true` only if you trust that code'):
        check_inputs_exist(cfg)
    cfg = load_and_validate(make_config('gkd.yaml', rlhf={'teacher_model': str(folder),
                                                          'teacher_trust_remote_code': True}))
    check_inputs_exist(cfg)
    assert remote_code_notices(cfg) == [f'rlhf.teacher_trust_remote_code: true: loading {folder} runs the code it '
                                        'ships: configuration_evil.py']
    assert not marker.exists()


def test_while_a_run_loads_models_remote_code_stays_off_even_when_ms_swift_asks_for_it(planted):
    """The guard under the up-front check: ms-swift's loader asks for trust_remote_code=True; nothing runs, and the
    native classes load."""
    from swift.model import get_model_processor
    from transformers import AutoConfig, Qwen3VLConfig

    from src.swift_seams import remote_code_only_for

    folder, marker = planted
    with remote_code_only_for([]):
        config = AutoConfig.from_pretrained(folder, trust_remote_code=True)
        model, _ = get_model_processor(str(folder), model_type='qwen3_vl')
    assert type(config) is Qwen3VLConfig and type(model.config) is Qwen3VLConfig
    assert not marker.exists()
    # An opted-in folder loads as it asks: checked in a fresh process by the next test (importing the planted module
    # here would register its class for the rest of the test session).


@pytest.mark.slow
def test_with_the_opt_in_the_run_trains_and_says_which_files_run(planted, make_config, tmp_path: Path):
    folder, marker = planted
    config = make_config('lora.yaml', name='trusted', model={'model': str(folder), 'trust_remote_code': True},
                         custom={'val_jsonl': None}, training={'max_steps': 1, 'save_steps': 1, 'eval_strategy': 'no'})
    done = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(config)], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f'model.trust_remote_code: true: loading {folder} runs the code it ships: configuration_evil.py' in (
        done.stderr)
    assert marker.read_text() == 'ran'
    assert (tmp_path / 'trusted' / 'checkpoint-1' / 'adapter_model.safetensors').is_file()


@pytest.mark.slow
def test_the_validator_and_eval_refuse_it_too(planted, tmp_path: Path):
    folder, marker = planted
    config = write_yaml(tmp_path / 'cfg.yaml', {'extends': str(REPO / 'configs' / 'smoke' / 'lora.yaml'),
                                                'model': {'model': str(folder)}})
    data = REPO / 'public_data' / 'smoke' / 'val.jsonl'
    done = subprocess.run([sys.executable, '-m', 'src.datasets.validate', str(data), '--config', str(config)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2 and 'asks to run `configuration_evil.EvilConfig`' in done.stderr
    done = subprocess.run([sys.executable, '-m', 'src.eval', '--config', str(config), '--checkpoint', str(folder),
                           '--limit', '1', '--output', str(tmp_path / 'eval')], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 2 and 'asks to run `configuration_evil.EvilConfig`' in done.stderr
    assert not marker.exists()
