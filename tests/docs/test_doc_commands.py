"""The shell commands in the data docs run as written, from the repository root."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

DOC = REPO / 'docs' / 'data' / 'DATA_PREPROCESSING_PIPELINE.md'


def _bash_blocks(path: Path) -> list[str]:
    return re.findall(r'```bash\n(.*?)```', path.read_text(), flags=re.S)


def _run_blocks(blocks: list[str]) -> None:
    """Run each block with bash from the repository root, the venv's python first on PATH; fail on the first error."""
    env = {**os.environ, 'PATH': f'{Path(sys.executable).parent}:{os.environ["PATH"]}'}
    for block in blocks:
        result = subprocess.run(['bash', '-euo', 'pipefail', '-c', block], cwd=REPO, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, f'{block}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}'


def test_preprocessing_walkthrough_runs():
    shutil.rmtree(REPO / 'output' / 'walkthrough', ignore_errors=True)
    blocks = _bash_blocks(DOC)
    assert len(blocks) == 4
    _run_blocks(blocks)
    assert list((REPO / 'output' / 'walkthrough' / 'run').glob('checkpoint-*/adapter_model.safetensors'))


@pytest.mark.parametrize('doc', ['DATA_JSONL_CONTRACT.md'])
def test_contract_doc_validate_command_runs(doc: str):
    [command] = _bash_blocks(REPO / 'docs' / 'data' / doc)[:1]
    result = subprocess.run([sys.executable, *command.split()[1:]], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fusion_doc_commands_run():
    blocks = _bash_blocks(REPO / 'docs' / 'data' / 'fusion.md')
    assert len(blocks) == 2
    _run_blocks(blocks)
    assert len((REPO / 'output' / 'smoke' / 'mix.jsonl').read_text().splitlines()) == 56


def test_evaluation_doc_commands_run():
    """Train the smoke LoRA, evaluate it with pictures, and draw the augmented data, as docs/evaluation.md says."""
    blocks = _bash_blocks(REPO / 'docs' / 'evaluation.md')
    assert len(blocks) == 3
    shutil.rmtree(REPO / 'output' / 'smoke' / 'lora' / 'checkpoint-4' / 'eval', ignore_errors=True)
    _run_blocks(blocks[:2])
    out = REPO / 'output' / 'smoke' / 'lora' / 'checkpoint-4' / 'eval'
    assert (out / 'eval_report.json').is_file() and len(list((out / 'pictures').glob('*.png'))) == 8
    assert (REPO / 'public_data' / 'smoke' / 'coco_train_vis' / 'index.html').is_file()
