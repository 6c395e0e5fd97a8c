"""GKD on the tiny model, CPU, real ms-swift: KD terms start at zero, add up as documented, toggle, and train the
student only."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file

from src.config import load_and_validate
from src.config.visual_kd import ComponentKD
from src.trainers.rlhf_pipeline import ProjectRlhf
from src.trainers.swift_args import to_sft_arguments
from src.trainers.visual_kd import VisualKDLoss
from tests.conftest import REPO, SMOKE_DATA, write_yaml

pytestmark = pytest.mark.slow  # trains or runs a command end to end

ALL = {'aligner': ComponentKD(1.0, 'mse'), 'deepstack': ComponentKD(0.5, 'cosine'), 'vit': ComponentKD(2.0, 'mse')}


def _run(config: Path) -> ProjectRlhf:
    cfg = load_and_validate(config)
    pipeline = ProjectRlhf(to_sft_arguments(cfg), cfg)
    pipeline.main()
    return pipeline


@pytest.fixture(scope='module')
def lora_run(tmp_path_factory, tiny_model: Path):
    tmp = tmp_path_factory.mktemp('gkd')
    config = write_yaml(tmp / 'run.yaml', {
        'extends': str(REPO / 'configs' / 'smoke' / 'gkd.yaml'),
        'model': {'model': str(tiny_model)},
        'rlhf': {'teacher_model': str(tiny_model)},
        'training': {'output_dir': str(tmp / 'out'), 'max_steps': 6, 'save_steps': 6, 'eval_steps': 6,
                     'learning_rate': 5.0e-3},
    })
    pipeline = _run(config)
    rows = [json.loads(line) for line in (tmp / 'out' / 'logging.jsonl').read_text().splitlines()]
    return pipeline.trainer, rows, tmp / 'out'


def test_the_kd_weight_the_run_used_is_on_its_arguments_and_in_args_json(lora_run):
    """The playbook: the knob is attached to TrainArguments and their training_args, so tooling can read it."""
    trainer, _, out = lora_run
    assert trainer.args.llm_kd_weight == 1.0  # the training arguments (ms-swift's `training_args`)
    assert json.loads((out / 'args.json').read_text())['llm_kd_weight'] == 1.0


def test_kd_terms_start_at_zero_and_grow(lora_run):
    _, rows, _ = lora_run
    train = [r for r in rows if 'train/loss' in r]
    assert len(train) == 6
    first, last = train[0], train[-1]
    assert abs(first['train/llm_kd_loss']) < 1e-6 and abs(first['train/vision_kd_loss']) < 1e-6
    assert last['train/llm_kd_loss'] > 1e-6 and last['train/vision_kd_loss'] > 1e-6
    for row in train:  # sft_alpha = 1: the HF loss scalar is the documented sum
        total = row['train/sft_loss'] + row['train/llm_kd_loss'] + row['train/vision_kd_loss']
        assert row['train/loss'] == pytest.approx(total, abs=1e-5)
    [evaluation] = [r for r in rows if 'eval/loss' in r]
    assert evaluation['eval/loss'] == pytest.approx(evaluation['eval/sft_loss'], abs=1e-6)  # the loss is CE only
    # ... but the KD terms are measured too (the playbook's monitoring checklist watches eval/llm_kd_loss)
    assert {'eval/llm_kd_loss', 'eval/vision_kd_loss', 'eval/token_acc'} <= evaluation.keys()
    assert evaluation['eval/llm_kd_loss'] > 1e-6 and evaluation['eval/vision_kd_loss'] > 1e-6


def _batch(trainer):
    trainer.model.train()
    rows = next(iter(trainer.get_train_dataloader()))
    return trainer._prepare_inputs(rows)


def _manual(trainer, inputs, components: dict, llm_kd_weight: float) -> torch.Tensor:
    """The documented loss, recomputed from the model's pieces: CE, ms-swift's JSD, and the vision tower's outputs."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    mi = copy.deepcopy(inputs['model_inputs'])
    trainer.prepare_logits_to_keep(mi)
    student = model(**mi)
    with torch.no_grad(), model.disable_adapter():
        teacher_logits = model(**{k: v for k, v in mi.items() if k != 'labels'}).logits
    from swift.rlhf_trainers.gkd_loss import TeacherOutput
    total = trainer.args.sft_alpha * student.loss
    if llm_kd_weight:
        total = total + llm_kd_weight * trainer._compute_jsd_loss(
            student.logits, TeacherOutput(full_logits=teacher_logits, labels=mi['labels'].clone()), mi['labels'])
    visual = model.get_base_model().model.visual
    pixels, grid = mi['pixel_values'], mi['image_grid_thw']
    s = visual(pixels, grid_thw=grid)
    with torch.no_grad(), model.disable_adapter():
        t = visual(pixels, grid_thw=grid)
    pairs = {'vit': [(s.last_hidden_state, t.last_hidden_state)], 'aligner': [(s.pooler_output, t.pooler_output)],
             'deepstack': list(zip(s.deepstack_features, t.deepstack_features))}
    for name, spec in components.items():
        dists = [F.mse_loss(a, b) if spec.distance == 'mse' else (1 - F.cosine_similarity(a, b, dim=-1)).mean()
                 for a, b in pairs[name]]
        total = total + spec.weight * torch.stack(dists).mean()
    return total


@pytest.mark.parametrize('components, llm_kd_weight', [
    (ALL, 1.0),
    (ALL, 0.0),
    ({'aligner': ALL['aligner']}, 1.0),
    ({'deepstack': ALL['deepstack']}, 1.0),
    ({'vit': ALL['vit']}, 1.0),
    ({}, 0.5),
], ids=['all', 'no-llm-kd', 'aligner', 'deepstack', 'vit', 'no-visual'])
def test_loss_is_the_documented_sum_and_each_term_toggles(lora_run, components, llm_kd_weight):
    trainer, _, _ = lora_run
    inputs = _batch(trainer)
    trainer.visual_kd, trainer.llm_kd_weight = VisualKDLoss(components), llm_kd_weight
    trainer.custom_metrics['train'].clear()
    with torch.no_grad():
        loss = trainer.compute_loss(trainer.model, copy.deepcopy(inputs))
        expected = _manual(trainer, inputs, components, llm_kd_weight)
    assert loss.item() == pytest.approx(expected.item(), abs=1e-5)
    logged = set(trainer.custom_metrics['train'])
    assert ('llm_kd_loss' in logged) == bool(llm_kd_weight)
    assert ('vision_kd_loss' in logged) == bool(components)


def test_top_k_teacher_logits_replace_the_full_vocabulary_jsd(lora_run):
    """`rlhf.gkd_logits_topk`: ms-swift's JSD over the teacher's k most likely tokens, the cheap variant."""
    trainer, _, _ = lora_run
    inputs = _batch(trainer)
    trainer.visual_kd, trainer.llm_kd_weight = VisualKDLoss({}), 1.0
    try:
        with torch.no_grad():
            full = trainer.compute_loss(trainer.model, copy.deepcopy(inputs))
            trainer.gkd_logits_topk = 8
            top_k = trainer.compute_loss(trainer.model, copy.deepcopy(inputs))
            expected = _manual(trainer, inputs, {}, 1.0)
    finally:
        trainer.gkd_logits_topk = None
    assert torch.isfinite(top_k) and top_k.item() != pytest.approx(full.item(), abs=1e-6)
    assert top_k.item() == pytest.approx(expected.item(), abs=1e-5)


def test_visual_kd_gradients_reach_the_student_aligner_not_the_teacher(lora_run, tiny_model):
    trainer, _, _ = lora_run
    inputs = _batch(trainer)
    trainer.visual_kd, trainer.llm_kd_weight = VisualKDLoss({'aligner': ALL['aligner']}), 0.0
    alpha, trainer.args.sft_alpha = trainer.args.sft_alpha, 0.0
    try:
        trainer.model.zero_grad()
        trainer.compute_loss(trainer.model, inputs).backward()
    finally:
        trainer.args.sft_alpha = alpha
    params = dict(trainer.model.named_parameters())
    lora = [p for n, p in params.items() if 'visual.merger' in n and 'lora_' in n]
    assert lora and any(p.grad is not None and p.grad.abs().sum() > 0 for p in lora)
    base = {n: p for n, p in params.items() if 'visual.merger' in n and 'lora_' not in n}
    assert base and all(not p.requires_grad and p.grad is None for p in base.values())
    original = load_file(str(tiny_model / 'model.safetensors'))
    for name, p in base.items():  # the teacher (the base weights, adapter off) never changed
        key = name.replace('base_model.model.', '').replace('.base_layer', '')
        assert torch.equal(p.detach(), original[key]), name


def test_full_with_kd_stage_1_config_smoke_run(tmp_path, tiny_model):
    config = write_yaml(tmp_path / 'run.yaml', {
        'extends': str(REPO / 'configs' / 'stage_1' / 'full_with_kd.yaml'),
        'global_max_length': 512,
        'model': {'model': str(tiny_model), 'torch_dtype': 'float32', 'attn_impl': None},
        'template': {'max_pixels': None},
        'rlhf': {'teacher_model': str(tiny_model)},
        'training': {'output_dir': str(tmp_path / 'out'), 'add_version': False, 'max_steps': 2, 'save_steps': 2,
                     'logging_steps': 1, 'per_device_train_batch_size': 2, 'gradient_accumulation_steps': 1,
                     'eval_strategy': 'no', 'gradient_checkpointing': False, 'dataloader_num_workers': 0,
                     'learning_rate': 1.0e-3},
        'custom': {'train_jsonl': str(SMOKE_DATA / 'train.jsonl'), 'val_jsonl': None, 'sample_limit': 32},
    })
    pipeline = _run(config)
    out = tmp_path / 'out'
    assert (out / 'checkpoint-2' / 'model.safetensors').is_file()
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    train = [r for r in rows if 'train/loss' in r]
    assert len(train) == 2
    assert all({'train/llm_kd_loss', 'train/vision_kd_loss', 'train/sft_loss'} <= set(r) for r in train)
    teacher = pipeline.trainer.teacher_model
    assert teacher is not None and not any(p.requires_grad for p in teacher.parameters())
    original = load_file(str(tiny_model / 'model.safetensors'))
    state = teacher.state_dict()
    assert all(torch.equal(state[k], v) for k, v in original.items() if k in state)
