"""One run, one output directory: the lock, the refusal to reuse a finished run's folder, overwrite and resume."""
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.config import ConfigError
from src.run.run_dir import LOCK, MANIFEST, claim_output_dir, trim_log_rows
from tests.run.test_checkpoints import _checkpoint

HOLD_LOCK = '''
import sys, time
from src.run.run_dir import claim_output_dir
claim_output_dir(sys.argv[1], None, False)
print('locked', flush=True)
time.sleep(60)
'''


def _rows(*steps: int) -> str:
    return ''.join(json.dumps({'train/loss': 1.0, 'train/global_step/max_steps': f'{s}/4'}) + '\n' for s in steps)


def test_a_second_run_into_a_running_runs_folder_is_refused(tmp_path: Path):
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(tmp_path / 'run')], stdout=subprocess.PIPE,
                              text=True, cwd=Path(__file__).resolve().parents[2])
    try:
        assert holder.stdout.readline().strip() == 'locked'
        with pytest.raises(ConfigError, match=rf'in use by a running training \(PID {holder.pid}, started '):
            claim_output_dir(tmp_path / 'run', None, False)
        assert holder.poll() is None, 'the first run is untouched'
        assert json.loads((tmp_path / 'run' / LOCK).read_text())['pid'] == holder.pid
    finally:
        holder.kill()
        holder.wait()


def test_a_stale_lock_is_taken_over_with_a_warning(tmp_path: Path, caplog):
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'], capture_output=True, text=True)
    (tmp_path / LOCK).write_text(json.dumps({'pid': int(dead.stdout), 'host': socket.gethostname()}))
    lock = claim_output_dir(tmp_path, None, False)
    assert f'the run that held it (PID {int(dead.stdout)}) is gone; taking over its lock' in caplog.text
    assert json.loads((tmp_path / LOCK).read_text())['pid'] == os.getpid()
    lock.release()
    assert not (tmp_path / LOCK).exists()


def test_a_lock_from_another_host_names_it(tmp_path: Path):
    (tmp_path / LOCK).write_text(json.dumps({'pid': 1, 'host': 'node-7', 'started': '2026-11-27 10:00:00'}))
    with pytest.raises(ConfigError, match=r'in use by a run on host node-7 \(PID 1, started 2026-11-27 10:00:00\); '
                                          r'give this run another `training.output_dir`, or delete .*\.run\.lock'):
        claim_output_dir(tmp_path, None, False)


def _claimed(folder: Path) -> Path:
    """``folder`` as a run of the toolkit leaves it: claimed (the manifest written), then released."""
    claim_output_dir(folder, None, False).release()
    return folder


def test_a_finished_run_is_not_reused_silently(tmp_path: Path):
    _claimed(tmp_path)
    _checkpoint(tmp_path, 4)
    (tmp_path / 'logging.jsonl').write_text(_rows(1, 2, 3, 4))
    with pytest.raises(ConfigError) as exc:
        claim_output_dir(tmp_path, None, False)
    message = str(exc.value)
    assert f'{tmp_path} already holds a run (checkpoint-4, logging.jsonl)' in message
    assert f'set `training.resume_from_checkpoint: {tmp_path / "checkpoint-4"}`' in message
    assert 'set `training.overwrite_output_dir: true`' in message and '`training.add_version: true`' in message
    assert not (tmp_path / LOCK).exists(), 'a refused run leaves no lock behind'


def test_overwrite_removes_the_earlier_run_and_nothing_else(tmp_path: Path):
    _claimed(tmp_path)
    ckpt = _checkpoint(tmp_path, 4)
    (ckpt / 'eval').mkdir()
    for name in ('logging.jsonl', 'args.json', 'run.log', 'notes.txt'):
        (tmp_path / name).write_text('x')
    (tmp_path / 'runs').mkdir()
    (tmp_path / 'last-checkpoint').symlink_to('checkpoint-4')
    claim_output_dir(tmp_path, None, True).release()
    assert sorted(p.name for p in tmp_path.iterdir()) == [MANIFEST, 'notes.txt']


def test_resume_drops_the_rows_logged_after_the_checkpoint_and_sets_aside_a_broken_save(tmp_path: Path):
    ckpt = _checkpoint(tmp_path, 2)
    broken = _checkpoint(tmp_path, 4)
    (broken / 'adapter_model.safetensors').write_bytes(b'')
    (tmp_path / 'logging.jsonl').write_text(_rows(1, 2, 3, 4))
    claim_output_dir(tmp_path, str(ckpt), False).release()
    assert (tmp_path / 'logging.jsonl').read_text() == _rows(1, 2)
    assert (tmp_path / 'incomplete-checkpoint-4').is_dir() and not broken.exists()


def test_resuming_from_a_broken_save_names_the_one_to_use(tmp_path: Path):
    _checkpoint(tmp_path, 2)
    broken = _checkpoint(tmp_path, 4)
    (broken / 'trainer_state.json').unlink()
    with pytest.raises(ConfigError, match=r'`training.resume_from_checkpoint`: checkpoint-4 has no readable '
                                          rf'trainer_state.json: its save did not finish; resume from '
                                          rf'{tmp_path / "checkpoint-2"} instead'):
        claim_output_dir(tmp_path, str(broken), False)


def test_resume_and_overwrite_together_is_refused(tmp_path: Path):
    ckpt = _checkpoint(tmp_path, 2)
    with pytest.raises(ConfigError, match='resuming continues the run in output_dir; overwriting would delete it'):
        claim_output_dir(tmp_path, str(ckpt), True)


def test_trim_cuts_at_the_first_later_step_and_keeps_what_came_before(tmp_path: Path):
    summary = '{"train/model_parameter_info": "x"}\n'
    (tmp_path / 'logging.jsonl').write_text(_rows(1, 2) + summary + _rows(3, 4) + summary)
    assert trim_log_rows(tmp_path, 2) == 3
    assert (tmp_path / 'logging.jsonl').read_text() == _rows(1, 2) + summary
    assert (tmp_path / 'logging.after-step-2.jsonl').read_text() == _rows(3, 4) + summary, 'kept, not lost'
    assert trim_log_rows(tmp_path, 2) == 0


def test_the_lock_is_released_at_exit(tmp_path: Path):
    subprocess.run([sys.executable, '-c', f'from src.run.run_dir import claim_output_dir; '
                                          f'claim_output_dir({str(tmp_path)!r}, None, False)'],
                   check=True, cwd=Path(__file__).resolve().parents[2])
    time.sleep(0.1)
    assert not (tmp_path / LOCK).exists()
