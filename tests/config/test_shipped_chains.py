"""Every shipped recipe that names an earlier stage's output runs as shipped, under ms-swift's defaults (including
`add_version: true`, which puts each run in its own v<N>-<time> folder): the test finds each chain in configs/ by
itself, overrides only the model (the tiny one), the data paths and the sizes, runs both stages, and checks that the
second trained from the first's weights. For the two-stage recipe it also checks that `src.eval` generates exactly
what `swift infer --adapters` generates for the stage-2 checkpoint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.config import load_and_validate
from src.config.stage_outputs import STAGE_KEYS
from tests.conftest import REPO, SMOKE_DATA, write_yaml

pytestmark = pytest.mark.slow

def offline() -> dict[str, str]:
    """The environment as it is now (with the session's record-check cache folder, set after collection) and no
    network for the hub libraries."""
    return {**os.environ, 'HF_HUB_OFFLINE': '1', 'TRANSFORMERS_OFFLINE': '1'}


def shipped_chains() -> list[tuple[str, str, tuple[str, str]]]:
    """(earlier config, later config, the key of the later one that names the earlier one's output), for every
    config in configs/ with a stage key pointing into another config's `training.output_dir`."""
    configs = {p: load_and_validate(p) for p in sorted((REPO / 'configs').rglob('*.yaml'))
               if 'dataset_mix' not in p.parts and p.name != 'base.yaml'}
    outputs = {p: Path(c.training['output_dir']) for p, c in configs.items() if c.training.get('output_dir')}
    chains = []
    for later, cfg in configs.items():
        for section, key in STAGE_KEYS:
            value = cfg.written(section, key)
            if not isinstance(value, str) or not value.startswith(str(REPO / 'output')):
                continue
            earlier = [p for p, out in outputs.items() if Path(value).parent == out]
            assert len(earlier) == 1, f'{later}: `{section}.{key}` {value} is no (single) shipped config\'s output'
            chains.append((str(earlier[0].relative_to(REPO)), str(later.relative_to(REPO)), (section, key)))
    return chains


CHAINS = shipped_chains()


def test_the_known_chains_are_found():
    assert {(a, b) for a, b, _ in CHAINS} >= {
        ('configs/smoke/stage1_aligner.yaml', 'configs/smoke/stage2_llm_lora.yaml'),
        ('configs/stage_b/bbu_stage_a.yaml', 'configs/stage_b/bbu_stage_b.yaml'),
        ('configs/summary.yaml', 'configs/grpo/summary_grpo_base.yaml')}


def _overlay(copy: Path, config: str, tiny: Path, link: tuple[str, str] | None) -> Path:
    """``config`` of the checkout copy with only the model, the data paths and the sizes overridden."""
    cfg = load_and_validate(copy / config)
    summary = cfg.custom.mode == 'summary'
    train, val = (SMOKE_DATA / 'summary.jsonl', None) if summary else (SMOKE_DATA / 'train.jsonl',
                                                                       SMOKE_DATA / 'val.jsonl')
    overlay: dict = {'extends': str(copy / config), 'global_max_length': 1024}
    if link != ('model', 'model'):
        overlay['model'] = {'model': str(tiny), 'model_type': 'qwen3_vl', 'torch_dtype': 'float32'}
    if cfg.fusion is not None:  # the same sources, reading the smoke records
        overlay['custom'] = {'fusion_config': {'seed': cfg.fusion.seed, 'sources': [
            {'name': s.name, 'train_jsonl': str(train), **({'val_jsonl': str(val)} if val else {})}
            for s in cfg.fusion.sources]}}
    else:
        overlay['custom'] = {'train_jsonl': str(train), 'val_jsonl': str(val) if val else None}
    sizes = {'max_steps': 2, 'save_steps': 2, 'eval_steps': 2, 'logging_steps': 1, 'per_device_train_batch_size': 2,
             'per_device_eval_batch_size': 2, 'dataloader_num_workers': 0}
    if cfg.settings.effective_batch_size is not None:
        sizes['effective_batch_size'] = 4 if cfg.rlhf.get('rlhf_type') == 'grpo' else 2
    else:
        sizes['gradient_accumulation_steps'] = 1
    overlay['training'] = sizes
    if cfg.rlhf.get('rlhf_type') == 'grpo':
        overlay['rlhf'] = {'num_generations': 2, 'generation_batch_size': 4, 'max_completion_length': 16}
    return write_yaml(copy / f'{Path(config).stem}.chain.yaml', overlay)


def _run_dir(output_dir: Path) -> Path:
    """Where the run wrote: its one v<N>-<time> folder under `add_version: true` (ms-swift's default), else
    `output_dir` itself."""
    versions = [p for p in output_dir.iterdir() if p.is_dir() and p.name.startswith('v') and '-' in p.name]
    assert len(versions) <= 1, versions
    return versions[0] if versions else output_dir


@pytest.mark.parametrize('earlier,later,link', CHAINS, ids=[Path(b).stem for _, b, _ in CHAINS])
def test_each_shipped_chain_runs_as_shipped(repo_copy: Path, tiny_model: Path, earlier: str, later: str, link):
    from src.sft import main

    main(_overlay(repo_copy, earlier, tiny_model, None))
    main(_overlay(repo_copy, later, tiny_model, link))
    first_out = Path(load_and_validate(repo_copy / earlier).training['output_dir'])
    named = Path(load_and_validate(repo_copy / later).written(*link))  # e.g. output/stage_a/last
    expected = _run_dir(first_out) / named.name  # where ms-swift put it: output/stage_a/v0-<time>/last
    second_out = _run_dir(Path(load_and_validate(repo_copy / later).training['output_dir']))
    base = Path(json.loads((second_out / 'args.json').read_text())['model'])
    assert base in (expected, expected.with_name(expected.name + '-merged')), (base, expected)
    assert (base / 'config.json').is_file(), 'the second stage trained from the first stage\'s weights'
    if later.endswith('bbu_stage_b.yaml'):
        _eval_matches_swift_infer(repo_copy, second_out / 'checkpoint-2', later)


def _eval_matches_swift_infer(copy: Path, checkpoint: Path, config: str) -> None:
    """`src.eval` on stage B's adapter generates exactly what `swift infer --adapters` does: the adapter on stage A
    merged into the base, not on the bare base the config names."""
    ours = copy / 'eval'
    done = subprocess.run([sys.executable, '-m', 'src.eval', '--config', str(copy / f'{Path(config).stem}.chain.yaml'),
                           '--checkpoint', str(checkpoint), '--output', str(ours), '--max-new-tokens', '8',
                           '--limit', '4'], cwd=REPO, env=offline(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'is an adapter trained on' in done.stderr, 'the stage-A merge is the base, and the run says so'
    rows = [json.loads(line) for line in (checkpoint.parent / 'val.swift.jsonl').read_text().splitlines()][:4]
    data = copy / 'four.jsonl'
    data.write_text(''.join(json.dumps(r) + '\n' for r in rows))
    result = copy / 'swift_infer.jsonl'
    done = subprocess.run([str(Path(sys.executable).parent / 'swift'), 'infer', '--adapters', str(checkpoint),
                           '--val_dataset', str(data), '--max_new_tokens', '8', '--temperature', '0',
                           '--result_path', str(result)], cwd=copy, env=offline(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    theirs = [json.loads(line)['response'] for line in result.read_text().splitlines()]
    mine = [json.loads(line)['prediction'] for line in (ours / 'predictions.jsonl').read_text().splitlines()]
    assert mine == theirs
