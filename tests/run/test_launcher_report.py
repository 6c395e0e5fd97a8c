"""Under torchrun the reason a process stopped is what torchrun's closing summary shows, read by torch's own code."""
import json
from pathlib import Path

import pytest
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure

from src.run.launcher_report import report_failure
from src.sft import cli
from tests.conftest import SMOKE_CONFIGS


def _torchrun_summary(error_file: Path, exitcode: int) -> str:
    """What torchrun prints last for a process that exited with ``exitcode`` and wrote ``error_file``."""
    failure = ProcessFailure(local_rank=0, pid=1234, exitcode=exitcode, error_file=str(error_file))
    return ChildFailedError('src.sft', {0: failure}).format_msg()


def test_a_config_error_is_the_root_cause_torchrun_shows(tmp_path: Path, monkeypatch, capsys):
    bad = tmp_path / 'bad.yaml'
    bad.write_text(f'extends: {SMOKE_CONFIGS / "lora.yaml"}\ntraining:\n  packing: true\n')
    error_file = tmp_path / 'error.json'
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    assert cli(['--config', str(bad)]) == 2
    assert 'packing was removed; batches are padded' in capsys.readouterr().err, 'still on standard error'
    summary = _torchrun_summary(error_file, 2)
    assert 'traceback : error: 1 problem in the config:' in summary
    assert f'{bad}: `training.packing`: packing was removed; batches are padded. Delete the key.' in summary
    assert 'To enable traceback see' not in summary


def test_a_traceback_is_shown_whole_and_named_by_its_last_line(tmp_path: Path, monkeypatch, capsys):
    error_file = tmp_path / 'error.json'
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    try:
        1 / 0
    except ZeroDivisionError:
        import traceback

        report_failure(traceback.format_exc())
    assert json.loads(error_file.read_text())['message']['message'] == 'ZeroDivisionError: division by zero'
    summary = _torchrun_summary(error_file, 1)
    assert 'traceback : Traceback (most recent call last):' in summary and '1 / 0' in summary
    assert capsys.readouterr().err.startswith('Traceback (most recent call last):')


def test_without_torchrun_the_message_goes_to_standard_error_only(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.delenv('TORCHELASTIC_ERROR_FILE', raising=False)
    monkeypatch.chdir(tmp_path)
    report_failure('error: something')
    assert capsys.readouterr().err == 'error: something\n' and not list(tmp_path.iterdir())


def test_an_unwritable_error_file_leaves_a_note_and_the_message(tmp_path: Path, monkeypatch, capsys):
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(tmp_path / 'missing' / 'error.json'))
    report_failure('error: something')
    err = capsys.readouterr().err
    assert err.startswith('error: something\nnote: could not write the failure for torchrun to ')
    assert 'missing/error.json' in err


@pytest.mark.parametrize('text', ['', '\n'])
def test_an_empty_report_still_writes_a_readable_file(tmp_path: Path, monkeypatch, text):
    error_file = tmp_path / 'error.json'
    monkeypatch.setenv('TORCHELASTIC_ERROR_FILE', str(error_file))
    report_failure(text)
    assert 'exitcode  : 1' in _torchrun_summary(error_file, 1)
