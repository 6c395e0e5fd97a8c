"""Operating system errors are one line naming the setting or file and the OS reason, found before work is lost
where they can be foreseen: an unwritable evaluation folder (before generating), an epoch too large for memory
(before scheduling it), a disk too small for one checkpoint (before step 1); a save cut by the file system is set
aside as an incomplete checkpoint with a message, not a traceback."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from src.eval.errors import EvalError
from src.eval.run import main as evaluate
from src.run.run_dir import space_problem
from tests.conftest import REPO, SMOKE_DATA, write_yaml


@pytest.fixture
def val_config(make_config):
    return make_config('lora.yaml', custom={'val_jsonl': str(SMOKE_DATA / 'val.jsonl')})


@pytest.mark.parametrize('where', ['a_file', 'a_file/inside'])
def test_an_unwritable_eval_output_is_refused_before_the_model_loads(val_config, tiny_model: Path, tmp_path: Path,
                                                                       monkeypatch, where: str):
    (tmp_path / 'a_file').write_text('taken')
    monkeypatch.setattr('src.eval.run.load_engine', lambda *a: pytest.fail('the model was loaded'))
    with pytest.raises(EvalError) as err:
        evaluate(val_config, tiny_model, output=tmp_path / where)
    assert str(err.value).startswith(f'--output: cannot write the results into {tmp_path / where}: ')


def test_an_epoch_beyond_memory_names_the_source_before_any_schedule_is_drawn(tmp_path: Path):
    config = write_yaml(tmp_path / 'mix.yaml', {'sources': [
        {'name': 'small', 'train_jsonl': str(SMOKE_DATA / 'train.jsonl')},
        {'name': 'huge', 'train_jsonl': str(SMOKE_DATA / 'coco_train.jsonl'), 'count': 10**13}]})
    done = subprocess.run([sys.executable, 'scripts/fuse_datasets.py', '--config', str(config), '--out',
                           str(tmp_path / 'mix.jsonl')], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    assert (f'{config}: one epoch would hold 10,000,000,000,032 samples (`huge` 10,000,000,000,000, `small` 32); '
            'its schedule alone needs about') in done.stderr
    assert 'Lower the sources\' `count` (or `ratio`)' in done.stderr and not (tmp_path / 'mix.jsonl').exists()


def test_a_disk_too_small_for_one_checkpoint_is_named_with_both_sizes(tmp_path: Path):
    problem = space_problem(tmp_path, 10**18)
    assert problem.startswith(f'`training.output_dir`: a checkpoint of this run takes about 931322574.6 GiB '
                              f'(weights and optimizer state), and {tmp_path} has ')
    assert space_problem(tmp_path, 1) is None


CUT_SAVE = '''
import resource, signal, sys
from src.sft import cli
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)      # a write past the limit fails with EFBIG, as on a full disk
resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
sys.exit(cli(['--config', sys.argv[1]]))
'''


@pytest.mark.slow
def test_a_save_cut_by_the_file_system_is_set_aside_with_one_line(make_config, tmp_path: Path):
    """Full fine-tuning writes a 25 MB model.safetensors; files may not exceed 8 MB in this process."""
    config = make_config('full.yaml', name='cut', custom={'val_jsonl': None},
                         training={'max_steps': 2, 'save_steps': 2, 'eval_strategy': 'no'})
    done = subprocess.run([sys.executable, '-c', CUT_SAVE, str(config)], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    out = tmp_path / 'cut'
    assert done.returncode == 2, done.stderr[-3000:]
    [line] = [line for line in done.stderr.splitlines() if line.startswith('error: ')]
    assert line.startswith(f'error: `training.output_dir`: writing into {out} failed: ') and 'File too large' in line
    assert 'the checkpoint it was writing is set aside as incomplete-checkpoint-2' in line
    assert 'Traceback' not in done.stderr
    assert (out / 'incomplete-checkpoint-2').is_dir() and not (out / 'checkpoint-2').exists()
    assert 'incomplete-checkpoint-2' in json.loads((out / '.toolkit_run.json').read_text())['written']
