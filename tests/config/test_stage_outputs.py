"""Paths into ms-swift's version folders (`training.add_version: true`, its default): an earlier stage's output is
found in its newest version folder, and a run resumed from one of its own version folders continues there."""
from pathlib import Path

from src.config import load_and_validate
from src.config.stage_outputs import resume_in_version_folder
from tests.conftest import SMOKE_CONFIGS, write_yaml


def _config(tmp_path: Path, **training) -> object:
    return load_and_validate(write_yaml(tmp_path / 'run.yaml', {
        'extends': str(SMOKE_CONFIGS / 'lora.yaml'), 'model': {'model': str(tmp_path / 'model')},
        'training': {'output_dir': 'out', **training}}))


def test_a_resumed_run_continues_in_its_version_folder(tmp_path: Path):
    checkpoint = tmp_path / 'out' / 'v0-20261204-120000' / 'checkpoint-4'
    checkpoint.mkdir(parents=True)
    cfg = _config(tmp_path, add_version=True, resume_from_checkpoint=str(checkpoint))
    assert resume_in_version_folder(cfg) == [
        f'`training.resume_from_checkpoint`: the run continues in its own version folder {checkpoint.parent} '
        '(`training.add_version` starts a new one only for a new run)']
    assert (cfg.training['output_dir'], cfg.training['add_version']) == (str(checkpoint.parent), False)


def test_other_runs_keep_their_settings(tmp_path: Path):
    inside = tmp_path / 'out' / 'v0-20261204-120000' / 'checkpoint-4'
    elsewhere = tmp_path / 'other' / 'v0-20261204-120000' / 'checkpoint-4'
    for checkpoint in (inside, elsewhere):
        checkpoint.mkdir(parents=True)
    for training in ({'add_version': False, 'resume_from_checkpoint': str(inside)},  # the user chose the folder
                     {'add_version': True, 'resume_from_checkpoint': str(elsewhere)},  # another run's checkpoint
                     {'add_version': True}):
        cfg = _config(tmp_path, **training)
        assert resume_in_version_folder(cfg) == [] and cfg.training['output_dir'] == str(tmp_path / 'out')
