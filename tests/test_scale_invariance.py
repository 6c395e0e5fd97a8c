"""The same global batch gives the same step, whether it is split as 1 x 4, 2 processes x 2, or 1 x 2 x accumulation 2.

Each run trains one step through `scripts/train.sh` (`NPROC_PER_NODE=2` for the two-process split, gloo on CPU) and
every key of the first `logging.jsonl` rows (training and evaluation) is compared. LoRA dropout is off: its masks
are drawn per process and per micro-batch, so with it the gradients differ by design.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.testing.tiny_model import build_tiny_model
from tests.conftest import REPO

pytestmark = pytest.mark.slow

SPLITS = {'1x4': (1, 4, 1), '2x2': (2, 2, 1), '1x2x2': (1, 2, 2)}  # processes, micro-batch, accumulation
# Keys that measure the machine, not the math.
TIMING = ('runtime', 'per_second', 'speed', 'elapsed_time', 'remaining_time', 'memory', 'total_flos', 'step_time')
TOLERANCE = 1e-4


def _run(make_config, parent: str, name: str, split: str, **sections) -> list[dict]:
    processes, micro, accumulation = SPLITS[split]
    training = {'per_device_train_batch_size': micro, 'gradient_accumulation_steps': accumulation,
                'per_device_eval_batch_size': 4 // processes,  # one global evaluation batch of 4 in every split
                'max_steps': 1, 'save_strategy': 'no', 'eval_strategy': 'steps', 'eval_steps': 1,
                'train_dataloader_shuffle': False, 'report_to': [], **sections.pop('training', {})}
    config = make_config(parent, name=f'{name}_{split}', training=training,
                         tuner={'lora_dropout': 0.0, **sections.pop('tuner', {})}, **sections)
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    env.update(PYTHON=sys.executable, NPROC_PER_NODE=str(processes), MASTER_PORT=str(29600 + hash(name) % 300))
    done = subprocess.run([str(REPO / 'scripts' / 'train.sh'), str(config)], cwd=REPO, env=env, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    out = Path(str(config).removesuffix('.yaml'))
    return [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]


def _table(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """The math keys (numbers, timing aside) of each split's step-1 training and evaluation rows."""
    table = {}
    for split, rows in runs.items():
        train = next(r for r in rows if 'train/loss' in r)
        evaluation = next((r for r in rows if 'eval/loss' in r), {})
        table[split] = {k: v for k, v in {**train, **evaluation}.items()
                        if isinstance(v, (int, float)) and not any(t in k for t in TIMING)}
    return table


def _assert_same(table: dict[str, dict[str, float]], splits: tuple[str, ...]) -> None:
    reference = table[splits[0]]
    for split in splits[1:]:
        assert table[split].keys() == reference.keys(), split
        for key, value in table[split].items():
            assert value == pytest.approx(reference[key], rel=TOLERANCE, abs=1e-7), f'{split}: {key}'


def _compare(runs: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    """Every math key of the step-1 rows agrees across all three splits; returns them."""
    table = _table(runs)
    _assert_same(table, tuple(SPLITS))
    return table


def test_sft_lora_with_per_dataset_telemetry_and_eval(make_config):
    table = _compare({split: _run(make_config, 'fusion.yaml', 'lora', split) for split in SPLITS})
    reference = table['1x4']
    assert {'train/loss', 'train/grad_norm', 'train/token_acc', 'eval/loss', 'eval/token_acc'} <= reference.keys()
    assert any(k.endswith('_loss') and k not in ('train/loss', 'eval/loss') for k in reference), 'per-source keys'
    print(json.dumps(table, indent=1))


def test_sft_full(make_config):
    _compare({split: _run(make_config, 'full.yaml', 'full', split, custom={'val_jsonl': None},
                          training={'eval_strategy': 'no'}) for split in SPLITS})


def test_gkd_terms_their_sum_per_dataset_telemetry_and_eval(make_config, tmp_path: Path):
    """GKD on the fusion mixture with visual KD and the monitor: every logged key of step 1 (training and evaluation,
    per source too) agrees across the splits; the terms add up to the loss, and evaluation's loss is its sft_loss.

    SGD, not AdamW: the evaluation after the step measures how far the student moved from the teacher, and AdamW's
    first update is about lr x sign(gradient), so gradients that are zero up to rounding move weights by a whole
    step in either direction; with SGD the move is proportional to the (split-invariant) gradient. The teacher is
    another random initialisation of the tiny architecture, so that every KD term is far from zero."""
    teacher = build_tiny_model(tmp_path / 'teacher', seed=1)
    gkd = {'rlhf': {'rlhf_type': 'gkd', 'teacher_model': str(teacher), 'beta': 0.5, 'sft_alpha': 1.0,
                    'lmbda': 0.0, 'seq_kd': False},
           'custom': {'trainer_variant': 'gkd_monitor',
                      'visual_kd': {'aligner': {'enabled': True, 'weight': 1.0, 'distance': 'mse'},
                                    'deepstack': {'enabled': True, 'weight': 0.5, 'distance': 'cosine'}}}}
    table = _compare({split: _run(make_config, 'fusion.yaml', 'gkd', split, training={'optim': 'sgd'}, **gkd)
                      for split in SPLITS})
    for values in table.values():
        assert min(abs(values[f'{mode}/{k}']) for mode in ('train', 'eval')
                   for k in ('llm_kd_loss', 'vision_kd_loss')) > 1e-3
        for mode in ('train', 'eval'):
            parts = sum(values[f'{mode}/{k}'] for k in ('sft_loss', 'llm_kd_loss', 'vision_kd_loss'))
            assert values[f'{mode}/loss'] == pytest.approx(
                parts if mode == 'train' else values['eval/sft_loss'], rel=1e-6), mode
    reference = table['1x4']
    assert {'eval/llm_kd_loss', 'eval/vision_kd_loss', 'train/token_acc', 'eval/token_acc'} <= reference.keys()
    assert any(k.endswith('_loss') and k.split('/')[1] not in ('loss', 'sft_loss', 'llm_kd_loss', 'vision_kd_loss')
               for k in reference), 'per-source keys'
    print(json.dumps(table, indent=1))


# A reward in ms-swift's plugin form whose value differs between random completions (the summary rewards score a
# random model's output 0 everywhere, which would leave every advantage, and the gradient, at 0).
PLUGIN = """from swift.rewards import ORM, orms


class DistinctChars(ORM):
    def __call__(self, completions, **kwargs):
        return [len(set(c)) / max(len(c), 1) for c in completions]


orms['distinct_chars'] = DistinctChars
"""


def test_grpo_with_seeded_rollouts(make_config, tmp_path: Path):
    """GRPO samples the same completions in every split when each is seeded by its position in the global generation
    batch (`rlhf.seeded_rollouts`); ms-swift's default `loss_type: grpo` weighs the global batch's sequences equally,
    so rewards and the gradient agree."""
    plugin = tmp_path / 'plugin.py'
    plugin.write_text(PLUGIN)
    rlhf = {'seeded_rollouts': True, 'generation_batch_size': 4, 'reward_funcs': ['distinct_chars', 'summary_format'],
            'reward_weights': [1.0, 1.0]}
    table = _compare({split: _run(make_config, 'summary_grpo.yaml', 'grpo', split, rlhf=rlhf,
                                  training={'external_plugins': [str(plugin)]}) for split in SPLITS})
    reference = table['1x4']
    assert reference['train/grad_norm'] > 1e-4 and reference['train/reward_std'] > 0
    assert {'train/rewards/DistinctChars/mean', 'train/completions/mean_length'} <= reference.keys()
    print(json.dumps(table, indent=1))
