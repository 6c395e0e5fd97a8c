"""GRPO on the tiny model, CPU, real ms-swift: 2 steps, 2 generations per prompt, rewards logged, adapter saved."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from src.datasets import BuildSettings, DenseCaptionDataset
from src.datasets.rollout import RolloutDataset
from src.rewards import REWARDS
from src.sft import main
from tests.conftest import SMOKE_DATA


def test_rollout_rows_carry_the_reference_summary_as_solution():
    rows = RolloutDataset(DenseCaptionDataset(SMOKE_DATA / 'summary.jsonl', None, settings=BuildSettings('summary')))
    row = rows[3]
    assert row['solution'] == '无关图片' and row['messages'][-1] == {'role': 'assistant', 'content': '无关图片'}
    assert rows[0]['solution'].startswith('dataset: coco\nobjects: 2\n')
    assert rows[0]['_dataset_label'] == 'coco'  # the record's `dataset`, for per-dataset rewards


@pytest.mark.slow
def test_grpo_run_logs_every_reward_and_saves_an_adapter(make_config, tmp_path: Path):
    main(make_config('summary_grpo.yaml', name='grpo'))
    out = tmp_path / 'grpo'
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    steps = [r for r in rows if 'train/reward' in r]
    assert len(steps) == 2
    datasets = {json.loads(line).get('dataset') for line in (SMOKE_DATA / 'summary.jsonl').read_text().splitlines()}
    for row in steps:
        assert all(f'train/rewards/{name}/mean' in row for name in REWARDS)
        per_dataset = {k.removeprefix('train/').removesuffix('_reward') for k in row if k.endswith('_reward')}
        assert per_dataset and per_dataset <= datasets, row  # the datasets drawn into the step's generation batch
    ckpt = out / 'checkpoint-2'
    assert (ckpt / 'adapter_model.safetensors').is_file()
    assert not list(out.rglob('model*.safetensors'))
