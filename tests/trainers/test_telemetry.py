"""Per-dataset telemetry: what it computes, how it reduces across ranks, and what a 3-source run logs."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from src.sft import main
from src.trainers.telemetry import DATASET_LABELS, DROPPED, TelemetryCollator, reduce_sums, row_token_stats
from tests.conftest import REPO


def test_row_token_stats_match_a_manual_shifted_cross_entropy():
    torch.manual_seed(0)
    logits = torch.randn(2, 6, 11)
    labels = torch.tensor([[-100, -100, 3, 4, 5, 1], [-100, 7, 7, -100, -100, -100]])
    stats = row_token_stats(logits, labels)
    for row in range(2):
        mask = labels[row, 1:] != -100
        picked, wanted = logits[row, :-1][mask], labels[row, 1:][mask]
        assert torch.allclose(stats[row, 0], F.cross_entropy(picked, wanted, reduction='sum'))
        assert stats[row, 1] == mask.sum()
        assert stats[row, 2] == (picked.argmax(-1) == wanted).sum()


def test_collator_moves_labels_and_dropped_objects_into_the_batch():
    rows = [{'x': 1, '_dataset_label': 'a', '_dropped_objects': 2}, {'x': 2, '_dataset_label': 'b',
                                                                     '_dropped_objects': 1}]
    batch = TelemetryCollator(lambda rs: {'x': [r['x'] for r in rs], 'keys': [sorted(r) for r in rs]})(rows)
    assert batch[DATASET_LABELS] == ['a', 'b'] and batch[DROPPED].item() == 3
    assert batch['keys'] == [['x'], ['x']]  # the template's collator never sees the telemetry fields
    plain = TelemetryCollator(lambda rs: {'n': len(rs)})([{'x': 1}])
    assert plain == {'n': 1}


def _reduce_worker(rank: int, init_file: str, out_dir: str) -> None:
    dist.init_process_group('gloo', init_method=f'file://{init_file}', rank=rank, world_size=2)
    mine = {'a': torch.tensor([2.0, 1.0, 1.0])} if rank == 0 else {'b': torch.tensor([6.0, 3.0, 0.0]),
                                                                  'a': torch.tensor([4.0, 2.0, 1.0])}
    reduced = reduce_sums(mine, torch.device('cpu'))
    torch.save(reduced, os.path.join(out_dir, f'{rank}.pt'))
    dist.destroy_process_group()


@pytest.mark.slow
def test_sums_reduce_across_ranks_even_for_a_dataset_one_rank_never_saw(tmp_path):
    mp.spawn(_reduce_worker, args=(str(tmp_path / 'init'), str(tmp_path)), nprocs=2)
    for rank in range(2):
        reduced = torch.load(tmp_path / f'{rank}.pt')
        assert reduced['a'].tolist() == [6.0, 3.0, 2.0] and reduced['b'].tolist() == [6.0, 3.0, 0.0]


@pytest.fixture(scope='module')
def fusion_run(tmp_path_factory, tiny_model: Path):
    """configs/smoke/fusion.yaml on the tiny model, with gradient accumulation, dropped-object counting and eval."""
    from tests.conftest import write_yaml
    tmp = tmp_path_factory.mktemp('fusion')
    config = write_yaml(tmp / 'run.yaml', {
        'extends': str(REPO / 'configs' / 'smoke' / 'fusion.yaml'),
        'model': {'model': str(tiny_model)},
        'training': {'output_dir': str(tmp / 'out'), 'gradient_accumulation_steps': 2, 'max_steps': 6,
                     'eval_steps': 3, 'save_steps': 6},
        'custom': {'augmentation': {'ops': [{'name': 'crop', 'prob': 1.0, 'min_scale': 0.3, 'max_scale': 0.5}]}},
    })
    main(config)
    rows = [json.loads(line) for line in (tmp / 'out' / 'logging.jsonl').read_text().splitlines()]
    return tmp / 'out', rows


@pytest.mark.slow
def test_each_source_logs_loss_and_token_acc_and_weights_to_the_total(fusion_run):
    _, rows = fusion_run
    train = [r for r in rows if 'train/loss' in r]
    assert len(train) == 6
    seen = set()
    for row in train:
        names = [k[len('train/'):-len('_tokens')] for k in row if k.endswith('_tokens')]
        seen |= set(names)
        assert all(f'train/{n}_loss' in row and f'train/{n}_token_acc' in row for n in names)
        tokens = sum(row[f'train/{n}_tokens'] for n in names)
        weighted = sum(row[f'train/{n}_loss'] * row[f'train/{n}_tokens'] for n in names) / tokens
        assert weighted == pytest.approx(row['train/loss'], abs=1e-4)
    assert seen == {'grounding', 'coco', 'chat'}
    assert not any(k.startswith(('train/train/', 'train/eval', 'eval/eval')) for r in rows for k in r)


@pytest.mark.slow
def test_eval_reports_only_target_sources(fusion_run):
    _, rows = fusion_run
    evals = [r for r in rows if 'eval/loss' in r]
    assert len(evals) == 2
    for row in evals:
        per_source = {k for k in row if k.endswith(('_loss', '_token_acc', '_tokens')) and k != 'eval/loss'}
        assert per_source == {'eval/grounding_loss', 'eval/grounding_token_acc', 'eval/grounding_tokens'}


@pytest.mark.slow
def test_augmentation_drops_are_counted_and_metrics_reach_tensorboard(fusion_run):
    out, rows = fusion_run
    assert sum(r.get('train/dropped_objects', 0) for r in rows) > 0  # a 30-50% crop cuts objects out
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    events = EventAccumulator(str(out / 'runs'))
    events.Reload()
    tags = set(events.Tags()['scalars'])
    assert {'train/grounding_loss', 'train/coco_token_acc', 'eval/grounding_loss', 'train/dropped_objects'} <= tags
    assert not any(t.startswith(('train/train/', 'eval/eval', 'train/eval')) for t in tags)


@pytest.mark.slow
def test_a_dataset_named_like_a_split_logs_under_its_own_keys(make_config, tmp_path):
    """A dataset called `eval` would log `eval_loss` during training, which TensorBoard and logging.jsonl read as
    the evaluation loss: it logs `data_eval_loss`, and the training rows carry no evaluation key."""
    from src.sft import main
    from tests.conftest import SMOKE_DATA, write_jsonl

    records = [json.loads(line) for line in (SMOKE_DATA / 'train.jsonl').read_text().splitlines()][:4]
    for record in records:
        record['messages'][0]['content'][0]['image'] = str(SMOKE_DATA / record['messages'][0]['content'][0]['image'])
        record['dataset'] = 'eval'
    data = write_jsonl(tmp_path / 'named.jsonl', records)
    main(make_config('lora.yaml', name='named', custom={'train_jsonl': str(data), 'val_jsonl': None},
                     training={'max_steps': 2, 'eval_strategy': 'no', 'save_strategy': 'no', 'report_to': []}))
    rows = [json.loads(line) for line in (tmp_path / 'named' / 'logging.jsonl').read_text().splitlines()]
    train = [r for r in rows if 'train/loss' in r]
    assert all('train/data_eval_loss' in r and 'train/data_eval_token_acc' in r for r in train), train
    assert not any(k.startswith('eval/') for r in rows for k in r)


@pytest.mark.parametrize('name,logged', [('eval', 'data_eval'), ('eval_set', 'data_eval_set'), ('train', 'data_train'),
                                         ('test_a', 'data_test_a'), ('coco', 'coco'), ('retrain', 'retrain'),
                                         ('llm_kd', 'data_llm_kd'), ('sft', 'data_sft'), ('token', 'data_token')])
def test_dataset_names_that_read_as_a_split_or_a_trainer_metric_are_logged_apart(name, logged):
    """A record's `dataset: llm_kd` (a converter's --dataset) logged its cross-entropy over the GKD monitor's term."""
    from src.trainers.telemetry import metric_name

    assert metric_name(name) == logged
