"""The snapshot of ms-swift's argument fields matches the installed ms-swift, and validation needs no heavy import."""
import subprocess
import sys
import time

from src.config import swift_fields
from tests.conftest import REPO


def test_the_snapshot_is_what_the_installed_ms_swift_declares():
    assert swift_fields.generate() == swift_fields.snapshot(), (
        "ms-swift's arguments changed: run `.venv/bin/python -m src.config.swift_fields` and review the diff of "
        'src/config/swift_fields.json (new fields, types, defaults)')


def test_validation_imports_neither_ms_swift_nor_torch_and_is_quick(tmp_path):
    config = tmp_path / 'typo.yaml'
    config.write_text(f'extends: {REPO}/configs/smoke/gkd.yaml\ntraining:\n  learning_rat: 1.0e-4\n')
    probe = ('import sys, time; t = time.time(); from src.sft import cli; code = cli(["--config", sys.argv[1]]); '
             'print(time.time() - t, "torch" in sys.modules, "swift" in sys.modules, code)')
    started = time.monotonic()
    done = subprocess.run([sys.executable, '-c', probe, str(config)], cwd=REPO, capture_output=True, text=True)
    wall = time.monotonic() - started
    seconds, torch, swift, code = done.stdout.split()
    assert (torch, swift, code) == ('False', 'False', '2'), done.stderr
    assert 'did you mean `training.learning_rate`?' in done.stderr
    print(f'validation: {float(seconds):.2f} s in-process, {wall:.2f} s with interpreter start')
