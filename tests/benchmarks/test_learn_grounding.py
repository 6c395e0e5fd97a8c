"""Short runs of benchmarks/learn_grounding.py (generate, train through the entrypoint, evaluate before and after):
the training loss must fall by at least half and F1@0.5 rise above the random model's; the control's plumbing runs
on its own, in a few steps. The short version draws
larger shapes (50-90% of the side) and learns at 3e-3, so that 150 steps place boxes well enough (F1@0.5 0.00 ->
0.75 measured); the full benchmark's figures are in docs/evaluation.md ("Does it learn?"). A timed assertion does
not belong in a test."""
import json
import subprocess
import sys

import pytest

from tests.conftest import REPO


@pytest.mark.slow
def test_a_short_run_learns_to_place_the_boxes(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/learn_grounding.py', '--dir', str(tmp_path), '--train', '400',
                           '--val', '16', '--steps', '150', '--lr', '3e-3', '--shape-size', '0.5', '0.9',
                           '--runs', '1'],
                          cwd=repo_copy,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'before training: F1@0.5' in done.stdout
    assert 'clean: after 150 steps, median of 1 runs: F1@0.5' in done.stdout and 'spread: f1@0.5 ' in done.stdout
    results = json.loads((tmp_path / 'results.json').read_text())
    assert set(results) == {'before', 'clean'}
    curve = [loss for _, loss in results['clean']['curve']]
    assert curve[-1] <= curve[0] / 2, curve
    assert results['clean']['after']['f1@0.5'] > results['before']['f1@0.5'], results
    records = [json.loads(line) for line in (tmp_path / 'data_dense' / 'train.jsonl').read_text().splitlines()]
    assert len({tuple(r['objects'][0]['bbox_2d']) for r in records}) == 400  # continuous positions: all distinct


@pytest.mark.slow
def test_the_control_trains_the_injected_bug_beside_the_clean_run(tmp_path, repo_copy):
    """The plumbing of --control only: 75 steps are too few to place a box (every answer fails to parse), so what it
    scores is the full benchmark's figure (docs/evaluation.md)."""
    done = subprocess.run([sys.executable, 'benchmarks/learn_grounding.py', '--dir', str(tmp_path), '--train', '8',
                           '--val', '2', '--steps', '2', '--runs', '1', '--control'],
                          cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'control: clean F1' in done.stdout and 'flip-boxes: after 2 steps' in done.stdout
    results = json.loads((tmp_path / 'results.json').read_text())
    assert set(results) == {'before', 'clean', 'flip-boxes'}
    assert [step for step, _ in results['flip-boxes']['curve']][-1] == '2/2'


def test_every_figure_is_the_median_of_the_runs_with_its_spread():
    sys.path.insert(0, str(REPO / 'benchmarks'))
    from learn_grounding import summarise

    runs = [{'seed': s, 'after': {'f1@0.5': f1, 'mean_iou': iou}, 'curve': [('1/2', 9.0), ('2/2', loss)],
             'seconds': t} for s, f1, iou, loss, t in ((0, 0.2, 0.6, 0.7, 10), (1, 0.6, 0.7, 0.5, 12),
                                                        (2, 0.5, 0.65, 0.6, 11))]
    result = summarise(runs)
    assert result['after'] == {'f1@0.5': 0.5, 'mean_iou': 0.65} and result['final_loss'] == 0.6
    assert result['spread'] == {'f1@0.5': (0.2, 0.6), 'mean_iou': (0.6, 0.7)} and result['seconds'] == 11
    assert result['curve'] == runs[2]['curve'], 'the curve shown is the median run\'s'


@pytest.mark.slow
def test_the_summary_task_trains_with_forward_only_gkd(tmp_path, repo_copy):
    """Both variants in one short run: summary answers (counts per class), GKD against the step-0 model."""
    done = subprocess.run([sys.executable, 'benchmarks/learn_grounding.py', '--dir', str(tmp_path), '--train', '200',
                           '--val', '4', '--steps', '40', '--mode', 'summary', '--rlhf', 'gkd', '--runs', '1',
                           '--lr', '3e-3'],  # the default 1e-3 suits 1,200 steps: 40 took the loss only 12.0 -> 9.4
                          cwd=repo_copy,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'before training: summary content F1' in done.stdout
    results = json.loads((tmp_path / 'results.json').read_text())
    assert set(results['clean']['after']) == {'summary_content_f1', 'summary_objects_total', 'summary_format',
                                              'parse_failure_rate'}
    curve = [loss for _, loss in results['clean']['curve']]
    assert curve[-1] <= curve[0] / 2, curve
    config = (tmp_path / 'summary_gkd_seed0.yaml').read_text()
    assert 'rlhf_type: gkd' in config and 'lmbda: 0.0' in config
    assert 'overwrite_output_dir: true' in config, 'a rerun over a cut (or finished) run of itself trains again'
    records = [json.loads(line) for line in (tmp_path / 'data_summary' / 'train.jsonl').read_text().splitlines()]
    assert {len(r['objects']) for r in records} == {1, 2, 3}
    assert all(r['summary'].startswith('dataset: shapes\nobjects: ') for r in records)


@pytest.mark.slow
def test_the_control_needs_boxes(repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/learn_grounding.py', '--mode', 'summary', '--control'],
                          cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 2 and 'the flip-boxes control needs boxes in the answer' in done.stderr


@pytest.mark.slow
def test_jobs_must_be_positive(repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/learn_grounding.py', '--jobs', '0'], cwd=repo_copy,
                          capture_output=True, text=True)
    assert done.returncode == 2 and '--jobs must be at least 1, got 0' in done.stderr
