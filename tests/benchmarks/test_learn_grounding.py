"""A short run of benchmarks/learn_grounding.py (generate, train through the entrypoint, evaluate before and after,
and the bug-injected control): the training loss must fall by at least half. The F1 figures of the full benchmark
are in docs/evaluation.md ("Does it learn?"); a timed or learned-F1 assertion does not belong in a test."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def test_a_short_run_and_its_control_learn_the_answer_format(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/learn_grounding.py', '--dir', str(tmp_path), '--train', '400',
                           '--val', '8', '--steps', '100', '--control'], cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'before training: F1@0.5' in done.stdout and 'control: clean F1' in done.stdout
    results = json.loads((tmp_path / 'results.json').read_text())
    assert set(results) == {'before', 'clean', 'flip-boxes'}
    curve = [loss for _, loss in results['clean']['curve']]
    assert curve[-1] <= curve[0] / 2, curve
    records = [json.loads(line) for line in (tmp_path / 'data' / 'train.jsonl').read_text().splitlines()]
    assert len({tuple(r['objects'][0]['bbox_2d']) for r in records}) == 400  # continuous positions: all distinct
