"""A run's life as a user sees it, end to end on the tiny model: a quiet screen, one run per folder, resume after an
interruption that reproduces the loss curve, and outputs that ms-swift's own tools (`swift infer`, `swift export`)
and `transformers` open offline."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from src.config import ConfigError
from src.sft import main
from tests.conftest import REPO, SMOKE_DATA

pytestmark = pytest.mark.slow

def offline() -> dict[str, str]:
    """The environment as it is now (with the session's record-check cache folder, set after collection) and no
    network for the hub libraries."""
    return {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]


def _losses(out: Path) -> dict[str, float]:
    return {r['train/global_step/max_steps']: r['train/loss'] for r in _rows(out) if 'train/loss' in r}


def test_the_screen_shows_progress_and_metrics_and_the_details_go_to_run_log(make_config, tmp_path: Path):
    config = make_config('lora.yaml', name='quiet')
    done = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(config)], cwd=REPO, capture_output=True,
                          text=True, env=offline())
    assert done.returncode == 0, done.stderr[-3000:]
    screen = done.stdout + done.stderr
    assert "'train/loss'" in screen and 'Train: 100%' in screen
    assert 'training into' in screen and str(tmp_path / 'quiet' / 'run.log') in screen
    assert 'SftArguments(' not in screen and 'Qwen3VLForConditionalGeneration(' not in screen, 'dumps go to run.log'
    lines = [line for line in screen.splitlines() if line.strip() and not re.search(r'\d+%\|', line)]
    assert len(lines) < 20, '\n'.join(lines)  # progress bars aside: the metrics rows and a few warnings
    log = (tmp_path / 'quiet' / 'run.log').read_text()
    assert 'Qwen3VLForConditionalGeneration(' in log and 'model_parameter_info' in log

    rows = _rows(tmp_path / 'quiet')
    assert all(key.startswith(('train/', 'eval/')) for row in rows for key in row), 'one naming scheme throughout'
    assert [r['train/global_step/max_steps'] for r in rows if 'train/loss' in r] == ['1/4', '2/4', '3/4', '4/4']
    assert rows[-1]['train/last_model_checkpoint'].endswith('checkpoint-4')


def test_the_debug_report_is_the_last_thing_on_the_screen(make_config):
    done = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(make_config('lora.yaml', name='dbg')),
                           '--debug'], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          env=offline())
    assert done.returncode == 0, done.stdout[-3000:]
    tail = done.stdout.rstrip().splitlines()[-4:]
    assert tail[0].startswith('component') and tail[-1].startswith('llm'), done.stdout[-2000:]


def test_a_second_run_into_a_running_runs_folder_is_refused_and_the_first_finishes(make_config, tmp_path: Path):
    first = make_config('lora.yaml', name='busy', custom={'val_jsonl': None},
                        training={'max_steps': 30, 'save_steps': 30, 'eval_strategy': 'no'})
    running = subprocess.Popen([sys.executable, '-m', 'src.sft', '--config', str(first)], cwd=REPO, env=offline(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lock = tmp_path / 'busy' / '.run.lock'
    deadline = time.monotonic() + 120
    while not lock.exists() and running.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert lock.exists(), 'the first run took the folder'
    with pytest.raises(ConfigError, match=rf'{tmp_path / "busy"} is in use by a running training \(PID {running.pid}'):
        main(first)
    _, err = running.communicate(timeout=300)
    assert running.returncode == 0, err[-3000:]
    assert (tmp_path / 'busy' / 'checkpoint-30' / 'adapter_model.safetensors').is_file()
    assert not lock.exists()


def test_rerun_is_refused_until_told_to_overwrite_and_overwrite_keeps_the_users_files(make_config, tmp_path: Path):
    config = make_config('lora.yaml', name='again', custom={'val_jsonl': None},
                         training={'max_steps': 2, 'save_steps': 2, 'eval_strategy': 'no'})
    (tmp_path / 'again' / 'photos').mkdir(parents=True)  # the user's own folder
    (tmp_path / 'again' / 'photos' / 'cat.jpg').write_bytes(b'mine')
    main(config)
    (tmp_path / 'again' / 'checkpoint-2' / 'eval').mkdir()  # what `python -m src.eval` leaves in a checkpoint
    (tmp_path / 'again' / 'checkpoint-2' / 'eval' / 'eval_report.json').write_text('{}')
    before = _rows(tmp_path / 'again')
    with pytest.raises(ConfigError, match='already holds a run .*`training.overwrite_output_dir: true`'):
        main(config)
    assert _rows(tmp_path / 'again') == before, 'the finished run is untouched'
    overwrite = make_config('lora.yaml', name='again', custom={'val_jsonl': None}, training={
        'max_steps': 2, 'save_steps': 2, 'eval_strategy': 'no', 'overwrite_output_dir': True})
    with pytest.raises(ConfigError, match=r'hold checkpoint-2/eval, which that run did not write'):
        main(overwrite)  # the evaluation's results would go with the checkpoint
    (tmp_path / 'again' / 'checkpoint-2' / 'eval').rename(tmp_path / 'eval_of_run_1')
    main(overwrite)
    assert len(_rows(tmp_path / 'again')) == len(before), 'a fresh logging.jsonl, not appended to the old one'
    assert (tmp_path / 'again' / 'photos' / 'cat.jpg').read_bytes() == b'mine', 'overwrite never deletes the user\'s'


def test_resume_after_an_interrupted_save_reproduces_the_loss_curve(make_config, tmp_path: Path, caplog):
    steps = {'max_steps': 4, 'save_steps': 2, 'eval_strategy': 'no'}
    main(make_config('dense_augment.yaml', name='whole', custom={'val_jsonl': None}, training=steps))
    whole = tmp_path / 'whole'
    # The interrupted run: checkpoint-4's save died half-way (no trainer_state.json, a truncated adapter) and its log
    # already holds steps 3 and 4 and the end-of-run summary.
    shutil.copytree(whole, tmp_path / 'cut', symlinks=True)
    cut = tmp_path / 'cut'
    (cut / 'checkpoint-4' / 'trainer_state.json').unlink()
    adapter = cut / 'checkpoint-4' / 'adapter_model.safetensors'
    adapter.write_bytes(adapter.read_bytes()[:1000])

    with pytest.raises(ConfigError, match=rf'checkpoint-4 has no readable trainer_state.json: its save did not '
                                          rf'finish; resume from {cut / "checkpoint-2"} instead'):
        main(make_config('dense_augment.yaml', name='cut', custom={'val_jsonl': None},
                         training={**steps, 'resume_from_checkpoint': str(cut / 'checkpoint-4')}))
    with pytest.raises(ConfigError, match=r'was trained with other tuner settings than this config gives.*\n    '
                                          r'`tuner.lora_rank`: 8 in the checkpoint, 4 now'):
        main(make_config('dense_augment.yaml', name='cut', custom={'val_jsonl': None}, tuner={'lora_rank': 4},
                         training={**steps, 'resume_from_checkpoint': str(cut / 'checkpoint-2')}))
    main(make_config('dense_augment.yaml', name='cut', custom={'val_jsonl': None},
                     training={**steps, 'resume_from_checkpoint': str(cut / 'checkpoint-2')}))
    assert _losses(cut) == _losses(whole), 'the same four losses, each step logged once'
    assert len(_losses(whole)) == 4
    assert (cut / 'incomplete-checkpoint-4').is_dir() and (cut / 'checkpoint-4' / 'trainer_state.json').is_file()


def test_ms_swift_tools_open_the_run_offline(make_config, tmp_path: Path):
    main(make_config('lora.yaml', name='tools'))
    out = tmp_path / 'tools'
    ckpt = out / 'checkpoint-4'
    swift = str(Path(sys.executable).parent / 'swift')
    common = ['--max_new_tokens', '4', '--temperature', '0']

    for data_args, result in ((['--load_data_args', 'true'], 'a.jsonl'),
                              (['--val_dataset', str(out / 'val.swift.jsonl')], 'b.jsonl')):
        done = subprocess.run([swift, 'infer', '--adapters', str(ckpt), *data_args, *common, '--result_path',
                               str(tmp_path / result)], cwd=tmp_path, env=offline(), capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-3000:]
        answers = [json.loads(line) for line in (tmp_path / result).read_text().splitlines()]
        assert len(answers) == len((SMOKE_DATA / 'val.jsonl').read_text().splitlines())
        assert answers[0]['labels'].startswith('[{"desc": "car", "bbox_2d": [250, 281, 958, 469]}')

    done = subprocess.run([swift, 'export', '--adapters', str(ckpt), '--merge_lora', 'true'], cwd=tmp_path,
                          env=offline(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    merged = out / 'checkpoint-4-merged'
    model = AutoModelForImageTextToText.from_pretrained(merged, dtype=torch.float32)
    processor = AutoProcessor.from_pretrained(merged)
    messages = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Describe.'}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(text=[text], images=[Image.open(SMOKE_DATA / 'images' / '000.png')], return_tensors='pt')
    generated = model.generate(**inputs, max_new_tokens=4, do_sample=False)
    assert generated.shape[1] == inputs['input_ids'].shape[1] + 4
