"""The shell commands in the docs run as written, from the root of a copy of the checkout (`repo_copy`)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # trains or runs a command end to end

DOC = REPO / 'docs' / 'data' / 'DATA_PREPROCESSING_PIPELINE.md'


def _bash_blocks(path: Path) -> list[str]:
    return re.findall(r'```bash\n(.*?)```', path.read_text(), flags=re.S)


def _run_blocks(blocks: list[str], cwd: Path) -> None:
    """Run each block with bash in ``cwd``, the venv's python first on PATH; fail on the first error."""
    env = {**os.environ, 'PATH': f'{Path(sys.executable).parent}:{os.environ["PATH"]}'}
    for block in blocks:
        result = subprocess.run(['bash', '-euo', 'pipefail', '-c', block], cwd=cwd, env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, f'{block}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}'


def test_preprocessing_walkthrough_runs(repo_copy: Path):
    blocks = _bash_blocks(DOC)
    assert len(blocks) == 4
    _run_blocks(blocks, repo_copy)
    assert list((repo_copy / 'output' / 'walkthrough' / 'run').glob('checkpoint-*/adapter_model.safetensors'))


@pytest.mark.parametrize('doc', ['DATA_JSONL_CONTRACT.md', 'DATA_AND_DATASETS.md'])
def test_contract_doc_validate_command_runs(doc: str, repo_copy: Path):
    _run_blocks(_bash_blocks(REPO / 'docs' / 'data' / doc)[:1], repo_copy)


def test_fusion_doc_commands_run(repo_copy: Path):
    blocks = _bash_blocks(REPO / 'docs' / 'data' / 'fusion.md')
    assert len(blocks) == 2
    _run_blocks(blocks, repo_copy)
    assert len((repo_copy / 'output' / 'smoke' / 'mix.jsonl').read_text().splitlines()) == 56


def test_evaluation_doc_commands_run(repo_copy: Path):
    """Train the smoke LoRA, evaluate it with pictures, and draw the augmented data, as docs/evaluation.md says."""
    blocks = _bash_blocks(REPO / 'docs' / 'evaluation.md')
    # The others: "Does it learn?" and its variants (10 minutes each; their short versions are
    # tests/benchmarks/test_learn_grounding.py) and the VLMEvalKit benchmarks (they need a real checkpoint and data).
    assert len(blocks) == 5 and 'learn_grounding.py' in blocks[2] and '--mode summary' in blocks[3]
    assert 'VLMEvalKit' in blocks[4]
    _run_blocks(blocks[:2], repo_copy)
    out = repo_copy / 'output' / 'smoke' / 'lora' / 'checkpoint-4' / 'eval'
    assert (out / 'eval_report.json').is_file() and len(list((out / 'pictures').glob('*.png'))) == 8
    assert (repo_copy / 'public_data' / 'smoke' / 'coco_train_vis' / 'index.html').is_file()
