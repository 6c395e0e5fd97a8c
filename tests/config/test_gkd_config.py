"""GKD settings that would fail (or mislead) are reported before any model loads."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from src.config import ConfigError, check_inputs_exist, load_and_validate
from src.testing.tiny_model import build_tiny_model


def _problems(make_config, parent: str = 'gkd.yaml', **sections) -> str:
    with pytest.raises(ConfigError) as exc:
        cfg = load_and_validate(make_config(parent, **sections))
        check_inputs_exist(cfg)
    return str(exc.value)


def test_gkd_without_a_teacher(make_config):
    text = _problems(make_config, 'lora.yaml', rlhf={'rlhf_type': 'gkd'})
    assert 'GKD needs `rlhf.teacher_model`, the frozen teacher' in text


def test_unknown_distance_component_and_negative_weights(make_config, tiny_model):
    text = _problems(make_config, rlhf={'teacher_model': str(tiny_model), 'llm_kd_weight': -1.0},
                     custom={'visual_kd': {'aligner': {'distance': 'l1'}, 'neck': {'enabled': True},
                                           'vit': {'weight': -2}}})
    assert "`custom.visual_kd.aligner.distance`: unknown distance 'l1'; valid: mse, cosine" in text
    assert '`custom.visual_kd.neck`: unknown component; valid: enabled, vit, aligner, deepstack' in text
    assert '`custom.visual_kd.vit.weight`: must be >= 0, got -2' in text
    assert '`rlhf.llm_kd_weight`: must be >= 0, got -1.0 (0 removes the logits KD term)' in text


def test_teacher_with_another_vocabulary(make_config, tiny_model, tmp_path):
    other = tmp_path / 'other-teacher'
    shutil.copytree(tiny_model, other)
    tokenizer = json.loads((other / 'tokenizer.json').read_text())
    tokenizer['model']['vocab'] = {k + 'x': v for k, v in tokenizer['model']['vocab'].items()}
    (other / 'tokenizer.json').write_text(json.dumps(tokenizer))
    text = _problems(make_config, rlhf={'teacher_model': str(other)})
    assert 'has a different tokenizer / vocabulary than the student' in text


def test_a_teacher_of_another_family_is_refused_before_both_models_load(make_config, tmp_path_factory):
    """A Qwen2.5-VL teacher for the Qwen3-VL student shares the tokenizer, loaded, and stopped at step 1 with a
    shape error: the teacher reads the student's image patches (another patch size)."""
    qwen25 = build_tiny_model(tmp_path_factory.mktemp('m') / 'tiny-qwen25', arch='qwen2_5_vl')
    text = _problems(make_config, rlhf={'teacher_model': str(qwen25), 'lmbda': 0.0})
    assert (f'`rlhf.teacher_model` {qwen25} is a qwen2_5_vl model and the student' in text and 'a qwen3_vl one; the '
            "teacher sees the student's batch (its image patches and grid), which another family reads differently"
            in text)


def test_deepstack_kd_on_a_model_without_deepstack(make_config, tmp_path_factory):
    qwen25 = build_tiny_model(tmp_path_factory.mktemp('m') / 'tiny-qwen25', arch='qwen2_5_vl')
    text = _problems(make_config, model={'model': str(qwen25), 'model_type': 'qwen2_5_vl'},
                     template={'template': 'qwen2_5_vl'}, rlhf={'teacher_model': str(qwen25)})
    assert '`custom.visual_kd.deepstack`: the model' in text and 'has no DeepStack mergers' in text


def test_kd_knobs_outside_gkd_and_unsupported_teacher_api(make_config, tiny_model):
    text = _problems(make_config, 'lora.yaml', custom={'trainer_variant': 'gkd_monitor',
                                                       'visual_kd': {'aligner': {'enabled': True}}})
    assert '`custom.trainer_variant`: applies to GKD only' in text and '`custom.visual_kd`: applies to GKD' in text
    text = _problems(make_config, rlhf={'teacher_model': str(tiny_model), 'teacher_model_server': 'http://x:8000',
                                        'offload_teacher_model': True}, training={'use_liger_kernel': True})
    for key, what in (('rlhf.teacher_model_server', 'a teacher served over an API'),
                      ('rlhf.offload_teacher_model', 'a teacher offloaded to CPU between steps'),
                      ('training.use_liger_kernel', "Liger's fused JSD loss")):
        assert f"`{key}`: {what} is not supported with GKD here: the project's GKD loss takes the local" in text
    text = _problems(make_config, rlhf={'teacher_model': str(tiny_model), 'gkd_logits_topk': 0})
    assert '`rlhf.gkd_logits_topk`: must be >= 1, got 0 (the teacher logits kept per token' in text


def test_valid_gkd_config_keeps_relative_teacher_paths_local(make_config, tiny_model):
    cfg = load_and_validate(make_config('gkd.yaml', rlhf={'teacher_model': str(tiny_model)}))
    check_inputs_exist(cfg)
    assert Path(cfg.rlhf['teacher_model']) == tiny_model
    assert cfg.gkd.visual_kd.keys() == {'aligner', 'deepstack'}


def test_a_generation_must_hold_whole_optimizer_steps(make_config, tiny_model):
    text = _problems(make_config, rlhf={'teacher_model': str(tiny_model), 'steps_per_generation': 3},
                     training={'gradient_accumulation_steps': 2})
    assert ('`rlhf.steps_per_generation`: one generation covers 3 micro-batches, not a multiple of '
            'gradient_accumulation_steps (2)') in text


def test_a_generation_is_checked_against_the_accumulation_effective_batch_size_gives(make_config, tiny_model):
    """During validation `effective_batch_size` was not yet lifted into the typed settings, so the check saw an
    accumulation of 1 and accepted a generation of 2 micro-batches for steps of 4."""
    text = _problems(make_config, rlhf={'teacher_model': str(tiny_model), 'lmbda': 0.0, 'steps_per_generation': 2},
                     training={'per_device_train_batch_size': 1, 'gradient_accumulation_steps': None,
                               'effective_batch_size': 4})
    assert ('`rlhf.steps_per_generation`: one generation covers 2 micro-batches, not a multiple of '
            'gradient_accumulation_steps (4)') in text
    text = _problems(make_config, rlhf={'teacher_model': str(tiny_model), 'lmbda': 0.0},
                     training={'per_device_train_batch_size': 4, 'gradient_accumulation_steps': None,
                               'effective_batch_size': 2})
    assert 'is not a positive multiple of per_device_train_batch_size (4)' in text
