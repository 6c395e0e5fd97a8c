"""The playbook's YAML snippets (docs: ../shared/spec, copied here with the smoke paths) work as written as overlays
on the smoke configs, or are refused before any model loads with a message that says what to write instead."""
import importlib.util
from pathlib import Path

import pytest

from src.config import ConfigError, check_inputs_exist, load_and_validate
from tests.conftest import SMOKE_CONFIGS, write_yaml


def _overlay(tmp_path: Path, parent: str, snippet: dict, **extra) -> Path:
    return write_yaml(tmp_path / 'snippet.yaml', {'extends': str(SMOKE_CONFIGS / parent), **snippet, **extra})


def test_augmentation_faq_snippet(tmp_path: Path):
    snippet = {'custom': {'augmentation': {'enabled': True, 'ops': [
        {'name': 'hflip', 'params': {'prob': 0.3}},
        {'name': 'rotate', 'params': {'max_deg': 15.0, 'prob': 0.3}},
        {'name': 'color_jitter', 'params': {'brightness': [0.85, 1.15], 'prob': 0.3}},
        {'name': 'pad_to_multiple', 'params': {'multiple': 32}}]}}}
    cfg = load_and_validate(_overlay(tmp_path, 'dense_augment.yaml', snippet))
    ops = {op.name: op for op in cfg.augmentation.ops}
    assert (ops['hflip'].prob, ops['rotate'].params) == (0.3, {'max_deg': 15.0})
    assert ops['color_jitter'].arguments() == {'brightness': [0.85, 1.15], 'contrast': 0.0, 'saturation': 0.0}, \
        'brightness alone: contrast and saturation stay still (they jittered by 0.2 each, unseen)'
    resolved = cfg.augmentation.to_dict()['ops']
    assert {'name': 'color_jitter', 'prob': 0.3, 'brightness': [0.85, 1.15], 'contrast': 0.0, 'saturation': 0.0} \
        in resolved, 'resolved_config.yaml records every parameter, defaults included'
    assert ops['pad_to_multiple'].prob == 1.0
    off = _overlay(tmp_path, 'dense_augment.yaml', {'custom': {'augmentation': {**snippet['custom']['augmentation'],
                                                                                'enabled': False}}})
    assert load_and_validate(off).augmentation is None, '`enabled: false` turns it off'


def test_augmentation_spelling_mistakes_are_named(tmp_path: Path):
    bad = {'custom': {'augmentation': {'ops': [
        {'name': 'color_jitter', 'prob': 0.5, 'params': {'prob': 0.3, 'brightness': [1.2, 0.8]}}]}}}
    with pytest.raises(ConfigError) as exc:
        load_and_validate(_overlay(tmp_path, 'dense_augment.yaml', bad))
    assert exc.value.problems[0].endswith('`custom.augmentation.ops[0]`: (color_jitter) `prob` is set both beside '
                                          '`name` and in `params`; keep one')
    assert exc.value.problems[1].endswith('`custom.augmentation.ops[0].brightness`: (color_jitter) a range must be '
                                          '[low, high] with 0 <= low <= high, both finite, got [1.2, 0.8]')


@pytest.mark.parametrize('snippet,enabled', [
    ({'enabled': True, 'vit': {'enabled': False}, 'aligner': {'enabled': True, 'weight': 0.1, 'distance': 'mse'},
      'deepstack': {'enabled': True, 'weight': 0.1, 'distance': 'mse'}}, {'aligner', 'deepstack'}),
    ({'enabled': False, 'aligner': {'enabled': True, 'weight': 0.1}}, set()),
])
def test_visual_kd_snippets(tmp_path: Path, snippet: dict, enabled: set[str]):
    cfg = load_and_validate(_overlay(tmp_path, 'gkd.yaml', {'custom': {'visual_kd': snippet},
                                                            'rlhf': {'llm_kd_weight': 0.0}}))
    assert set(cfg.gkd.visual_kd) == enabled and cfg.gkd.llm_kd_weight == 0.0


def test_gkd_block_with_temperature(tmp_path: Path):
    snippet = {'rlhf': {'rlhf_type': 'gkd', 'teacher_model': '/abs/path/to/teacher', 'beta': 0.5, 'sft_alpha': 0.3,
                        'lmbda': 0.5, 'max_completion_length': 256, 'temperature': 0.9},
               'custom': {'trainer_variant': 'gkd_monitor'}}
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', snippet))
    assert cfg.training['temperature'] == 0.9, '`rlhf.temperature` is ms-swift\'s `training.temperature`'
    clash = _overlay(tmp_path, 'lora.yaml', snippet, training={'temperature': 0.3})
    with pytest.raises(ConfigError, match=r'`rlhf.temperature` = 0.9 and .*`training.temperature` = 0.3 are the same '
                                          r'setting \(`training.temperature`\); keep one'):
        load_and_validate(clash)


def test_seq_kd_is_refused_before_anything_loads(tmp_path: Path):
    snippet = {'rlhf': {'rlhf_type': 'gkd', 'teacher_model': '/abs/path/to/teacher', 'seq_kd': True}}
    with pytest.raises(ConfigError, match=r'`rlhf.seq_kd`: teacher-generated targets are not implemented in ms-swift '
                                          r'4.6.0 .*set `seq_kd: false`'):
        load_and_validate(_overlay(tmp_path, 'lora.yaml', snippet))


def test_the_dummy_dataset_placeholder_is_accepted_and_anything_else_refused(tmp_path: Path):
    load_and_validate(_overlay(tmp_path, 'lora.yaml', {'data': {'dataset': ['dummy'], 'val_dataset': ['dummy']}}))
    with pytest.raises(ConfigError, match='`data.dataset`: not settable here: the training records come from '
                                          '`custom.train_jsonl`'):
        load_and_validate(_overlay(tmp_path, 'lora.yaml', {'data': {'dataset': ['AI-ModelScope/coco']}}))


def test_target_modules_written_as_one_string_are_refused_with_the_list_to_write(tmp_path: Path):
    snippet = {'tuner': {'target_modules': ['q_proj; k_proj; v_proj; o_proj', 'up_proj; gate_proj; down_proj',
                                            'lm_head'], 'target_parameters': []}}
    with pytest.raises(ConfigError) as exc:
        load_and_validate(_overlay(tmp_path, 'lora.yaml', snippet))
    assert exc.value.problems[0].endswith("`tuner.target_modules`: 'q_proj; k_proj; v_proj; o_proj' is one entry "
                                          'holding several names, and it matches no module; write them as list '
                                          'items: [q_proj, k_proj, v_proj, o_proj]')
    assert len(exc.value.problems) == 2


def test_names_that_match_no_module_of_the_checkpoint_are_refused_before_it_loads(make_config):
    from src.config import check_inputs_exist

    tuner = {'target_modules': ['q_proj', 'qkv_proj', 'lm_head'],
             'modules_to_save': ['model.visual.deepstack_merger_list.7']}
    cfg = load_and_validate(make_config('lora.yaml', tuner=tuner))
    with pytest.raises(ConfigError) as exc:
        check_inputs_exist(cfg)
    text = str(exc.value)
    assert "`tuner.target_modules`: 'qkv_proj' match no module of" in text and "'q_proj'" not in text
    assert "`tuner.modules_to_save`: 'model.visual.deepstack_merger_list.7' match no module" in text
    check_inputs_exist(load_and_validate(make_config('lora.yaml', tuner={'target_modules': ['q_proj', 'o_proj']})))


def test_a_lora_on_an_lm_head_tied_to_the_embeddings_is_refused_before_the_model_loads(make_config, tiny_model):
    """The playbook's lm_head recipe on a model that ties `lm_head` to its input embeddings (Qwen3-VL 2B / 4B, and
    the tiny model) trained, but `swift export --merge_lora` and stage 2's merge put the delta into the embeddings
    too: the merged model's logits differed from the adapter's by 0.09 on the tiny model (a plain LoRA: 2e-7)."""
    import json

    from src.config import check_inputs_exist

    assert json.loads((tiny_model / 'config.json').read_text())['tie_word_embeddings'] is True
    cfg = load_and_validate(make_config('lora.yaml', tuner={'target_modules': ['q_proj', 'lm_head']}))
    with pytest.raises(ConfigError) as exc:
        check_inputs_exist(cfg)
    assert ('`tuner.target_modules`: `lm_head` of ' in str(exc.value) and 'shares its weight with the input '
            'embeddings (`tie_word_embeddings: true`), so a LoRA on it merges into both: `swift export --merge_lora` '
            'and stage 2 would give another model than the one trained. Leave `lm_head` out of the list') in str(
                exc.value)
    from src.config.module_names import ties_embeddings  # a hub id not downloaded: the published checkpoints
    assert ties_embeddings('Qwen/Qwen3-VL-4B-Instruct') and ties_embeddings('Qwen/Qwen3-VL-2B-Thinking')
    assert not ties_embeddings('Qwen/Qwen3-VL-8B-Instruct') and not ties_embeddings('Qwen/Qwen3-VL-32B-Instruct')


def test_vit_kd_with_a_frozen_vit_is_refused(tmp_path: Path):
    snippet = {'custom': {'visual_kd': {'enabled': True, 'vit': {'enabled': True, 'weight': 0.1, 'distance': 'mse'}}}}
    with pytest.raises(ConfigError, match=r'`custom.visual_kd`: `vit` distils features that nothing before them trains '
                                          r'\(`tuner.freeze_vit: true`, no adapter there\)'):
        load_and_validate(_overlay(tmp_path, 'gkd.yaml', snippet))
    load_and_validate(_overlay(tmp_path, 'gkd.yaml', snippet, tuner={'freeze_vit': False}))


@pytest.mark.parametrize('component', ['aligner', 'deepstack'])
def test_aligner_or_deepstack_kd_with_everything_before_them_frozen_is_refused(tmp_path: Path, component: str):
    """Visual KD on the mergers' features while the ViT and the mergers are frozen logged vision_kd_loss 0.0."""
    snippet = {'custom': {'visual_kd': {component: {'enabled': True, 'weight': 0.1, 'distance': 'mse'}}},
               'tuner': {'freeze_aligner': True, 'freeze_vit': True}}
    with pytest.raises(ConfigError) as err:
        load_and_validate(_overlay(tmp_path, 'gkd.yaml', snippet))
    assert (f'`custom.visual_kd`: `{component}` distils features that nothing before them trains '
            '(`tuner.freeze_vit: true`, `tuner.freeze_aligner: true`, no adapter there): the student\'s features never '
            f'move, so the term is a constant that teaches nothing; set `tuner.freeze_vit: false` or '
            f'`tuner.freeze_aligner: false`, or disable `{component}`') in str(err.value)
    load_and_validate(_overlay(tmp_path, 'gkd.yaml', {**snippet, 'tuner': {'freeze_aligner': False}}))
    # the playbook's `freeze_aligner: true  # aligner trained via modules_to_save`: the mergers train
    load_and_validate(_overlay(tmp_path, 'gkd.yaml', {**snippet, 'tuner': {
        'freeze_aligner': True, 'freeze_vit': True, 'modules_to_save': ['model.visual.merger']}}))


@pytest.mark.parametrize('tuner, expected', [
    ({'train_type': 'lora', 'freeze_llm': True, 'freeze_vit': True, 'freeze_aligner': True},
     'are all true and nothing else is named to train'),
    ({'train_type': 'full', 'freeze_llm': True, 'freeze_vit': True, 'freeze_aligner': True},
     'are all true and nothing else is named to train'),
    ({'target_regex': '^$', 'modules_to_save': []}, "`target_regex: '^$'` puts the adapter on no module, and no "
                                                    '`modules_to_save` names what trains instead'),
    ({'target_regex': '^$', 'modules_to_save': ['model.visual.merger'], 'use_dora': True},
     "`use_dora: true` with `target_regex: '^$'` has no module to act on"),
    ({'target_regex': '^$', 'modules_to_save': ['model.visual.merger'], 'train_type': 'adalora'},
     "`train_type: adalora` with `target_regex: '^$'` has no module to act on"),
])
def test_a_run_with_nothing_to_train_is_refused_before_the_model_loads(tmp_path: Path, tuner: dict, expected: str):
    """Each stopped after the model had loaded (an AssertionError, an IndexError, peft's empty torch.cat) or trained
    nothing of what it named (DoRA, BOFT on no module)."""
    with pytest.raises(ConfigError) as err:
        load_and_validate(_overlay(tmp_path, 'lora.yaml', {'tuner': tuner}))
    assert expected in str(err.value)


def test_an_error_about_several_tuner_keys_names_the_file_that_set_the_one_just_written(tmp_path: Path):
    """The playbook's aligner recipe in one file, `use_dora: true` in a child: the error named lora.yaml (the file of
    the section's first key), which set neither."""
    recipe = _overlay(tmp_path, 'lora.yaml', {'tuner': {'target_regex': '^$',
                                                         'modules_to_save': ['model.visual.merger']}})
    recipe = recipe.rename(tmp_path / 'aligner.yaml')
    child = write_yaml(tmp_path / 'dora.yaml', {'extends': str(recipe), 'tuner': {'use_dora': True}})
    with pytest.raises(ConfigError) as err:
        load_and_validate(child)
    assert f"{child}: `tuner.use_dora`: `use_dora: true` with `target_regex: '^$'` has no module" in str(err.value)


@pytest.mark.parametrize('training, expected', [
    ({'save_steps': 3, 'eval_steps': 2}, '`save_steps` (3) must be a multiple of `eval_steps` (2)'),
    ({'save_strategy': 'epoch', 'eval_strategy': 'steps'}, '`save_strategy` (epoch) and `eval_strategy` (steps) must '
                                                           'be the same (or `save_strategy: best`)'),
    ({'save_steps': 0.5, 'eval_steps': 2}, '`save_steps` (0.5) and `eval_steps` (2) cannot promise one'),
])
def test_load_best_model_at_end_without_a_checkpoint_at_each_evaluation_names_the_keys(tmp_path, training, expected):
    with pytest.raises(ConfigError) as err:
        load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'load_best_model_at_end': True, **training}}))
    assert '`training.load_best_model_at_end`: needs a checkpoint at every evaluation: ' + expected in str(err.value)
    for accepted in ({'save_steps': 4, 'eval_steps': 2}, {'save_steps': 0.3, 'eval_steps': 0.1},
                     {'save_strategy': 'best', 'eval_strategy': 'steps', 'eval_steps': 2}):
        load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'load_best_model_at_end': True, **accepted}}))


def test_a_config_without_a_sequence_length_is_refused(tmp_path: Path):
    path = write_yaml(tmp_path / 'x.yaml', {'model': {'model': '/m'}, 'custom': {'train_jsonl': 'a.jsonl'}})
    with pytest.raises(ConfigError, match=r'set `global_max_length` \(the longest sample in tokens'):
        load_and_validate(path)


def test_the_two_resume_keys_are_not_mixed(tmp_path: Path):
    snippet = {'tuner': {'resume_from_checkpoint': '/stage1/checkpoint-9'},
               'training': {'resume_from_checkpoint': '/run/checkpoint-4'}}
    with pytest.raises(ConfigError, match=r'`tuner.resume_from_checkpoint`: starts a new stage from a checkpoint\'s '
                                          r'weights \(step 0\), while `training.resume_from_checkpoint` continues'):
        load_and_validate(_overlay(tmp_path, 'lora.yaml', snippet))


TINY = {'model': {'model': '../../.cache/tiny-qwen3-vl'}}
ALIGNER_MODULES = ['model.visual.merger'] + [f'model.visual.deepstack_merger_list.{i}' for i in range(3)]


@pytest.mark.parametrize('parent,snippet,expected', [
    ('lora.yaml', {**TINY, 'template': {'template': 'qwen3_vl', 'max_length': 4096, 'truncation_strategy': 'raise'},
                   'global_max_length': 4096, 'data': {'dataset': ['dummy']}},
     {'template': 'qwen3_vl', 'max_length': 4096, 'truncation_strategy': 'raise', 'dataset': ['dummy']}),
    ('lora.yaml', {'tuner': {'train_type': 'lora', 'lora_rank': 32, 'lora_alpha': 64, 'target_modules': ['all-linear'],
                             'freeze_llm': False, 'freeze_vit': True, 'freeze_aligner': False}},
     {'tuner_type': 'lora', 'lora_rank': 32, 'lora_alpha': 64, 'freeze_llm': False, 'freeze_vit': True}),
    ('lora.yaml', {'tuner': {'train_type': 'lora', 'target_modules': ['all-linear'], 'freeze_llm': True,
                             'freeze_vit': True, 'freeze_aligner': False},
                   'training': {'num_train_epochs': 3, 'learning_rate': 1.0e-4}},
     {'freeze_llm': True, 'freeze_aligner': False, 'num_train_epochs': 3}),
    ('lora.yaml', {'rlhf': {'rlhf_type': 'gkd', 'teacher_model': '/abs/path/to/base/Qwen3-VL-4B-Instruct',
                            'sft_alpha': 1.0, 'beta': 0.1, 'seq_kd': False, 'lmbda': 0.0}},
     {'rlhf_type': 'gkd', 'sft_alpha': 1.0, 'beta': 0.1, 'seq_kd': False, 'lmbda': 0.0}),
    ('lora.yaml', {'training': {'lr_scheduler_type': 'cosine_warmup_with_min_lr', 'learning_rate': 1.0e-4,
                                'warmup_ratio': 0.1, 'lr_scheduler_kwargs': {'min_lr': 1.0e-6}}},
     {'lr_scheduler_type': 'cosine_warmup_with_min_lr', 'lr_scheduler_kwargs': {'min_lr': 1.0e-6}}),
    ('lora.yaml', {'deepspeed': {'enabled': True, 'config': 'zero2'}},
     {'deepspeed': lambda ds: ds['zero_optimization']['stage'] == 2, 'fp16': False, 'bf16': False}),
    ('full.yaml', {'deepspeed': {'enabled': True, 'config': 'zero3'}},
     {'deepspeed': lambda ds: ds['zero_optimization']['stage'] == 3, 'fp16': False, 'bf16': False}),
    ('lora.yaml', {'training': {'gradient_checkpointing': True}}, {'gradient_checkpointing': True}),
    ('lora.yaml', {'training': {'per_device_train_batch_size': 1, 'gradient_accumulation_steps': 16}},
     {'per_device_train_batch_size': 1, 'gradient_accumulation_steps': 16}),
    ('lora.yaml', {'global_max_length': 8192}, {'max_length': 8192}),
    ('lora.yaml', {'model': {'torch_dtype': 'bfloat16'}, 'training': {'bf16': True}},
     {'torch_dtype': 'bfloat16', 'bf16': True}),
    ('lora.yaml', {'data': {'dataloader_num_workers': 16, 'dataloader_pin_memory': True}},
     {'dataloader_num_workers': 16, 'dataloader_pin_memory': True}),
    ('lora.yaml', {'tuner': {'train_type': 'lora', 'freeze_llm': True, 'freeze_vit': True, 'freeze_aligner': True,
                             'target_regex': '^$', 'modules_to_save': ALIGNER_MODULES},
                   'training': {'optimizer': 'multimodal', 'aligner_lr': 1.0e-4, 'weight_decay': 0.1,
                                'warmup_ratio': 0.3}},
     {'modules_to_save': ALIGNER_MODULES, 'optimizer': 'multimodal', 'aligner_lr': 1.0e-4}),
], ids=['critical-setup', 'lora', 'stage-1-aligner', 'forward-only-kd', 'cosine-min-lr', 'zero2', 'zero3',
        'gradient-checkpointing', 'micro-batch', 'global-max-length', 'bf16', 'dataloader-under-data',
        'aligner-tuning'])
def test_the_playbooks_setting_snippets_reach_ms_swift(tmp_path: Path, parent: str, snippet: dict, expected: dict):
    """Each snippet validates as an overlay and arrives in ms-swift's arguments as the playbook means it."""
    from src.trainers.swift_args import sft_argument_kwargs

    kwargs = sft_argument_kwargs(load_and_validate(_overlay(tmp_path, parent, snippet)))
    for key, value in expected.items():
        assert value(kwargs.get(key)) if callable(value) else kwargs.get(key) == value, (key, kwargs.get(key))


def test_flash_attention_falls_back_to_sdpa_with_a_warning_where_flash_attn_is_missing(tmp_path: Path):
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {'model': {'attn_impl': 'flash_attention_2'}}))
    if importlib.util.find_spec('flash_attn') is not None:
        pytest.skip('flash-attn is installed here')
    assert cfg.model['attn_impl'] == 'sdpa'
    assert "`model.attn_impl`: 'flash_attention_2' needs the flash-attn package, which is not installed here; " \
           'training with `sdpa`' in cfg.warnings[-1]


def test_deepspeed_that_is_not_installed_is_refused_before_the_model_loads(make_config, monkeypatch):
    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec',
                        lambda name, *a: None if name == 'deepspeed' else find_spec(name, *a))
    with pytest.raises(ConfigError, match=r'`deepspeed.enabled`: DeepSpeed is not installed in this environment'):
        check_inputs_exist(load_and_validate(make_config('lora.yaml', deepspeed={'enabled': True, 'config': 'zero2'})))


def test_a_data_loader_setting_under_data_is_overridden_by_the_overlay_and_clashes_in_one_file(tmp_path: Path):
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {'data': {'dataloader_num_workers': 4}}))
    assert cfg.training['dataloader_num_workers'] == 4  # smoke/base.yaml sets training.dataloader_num_workers: 0
    clash = _overlay(tmp_path, 'lora.yaml', {'data': {'dataloader_num_workers': 4},
                                             'training': {'dataloader_num_workers': 2}})
    with pytest.raises(ConfigError, match=r'`data.dataloader_num_workers` = 4 and .*`training.dataloader_num_workers` '
                                          r'= 2 are the same setting'):
        load_and_validate(clash)


def test_a_run_that_saves_no_weights_says_so(tmp_path: Path):
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'save_strategy': 'no'}}))
    assert cfg.warnings == [f"{tmp_path / 'snippet.yaml'}: `training.save_strategy`: 'no': this run saves no weights, "
                            'so what it trains is gone when it ends (only the logs stay)']


def test_forward_only_gkd_says_what_temperature_and_completion_length_do_there(tmp_path: Path):
    """The playbook's forward-only snippet notes "temperature/max_completion_length are ignored in forward-only mode":
    a completion length is, but the temperature divides the logits of the KL (a 9x larger llm_kd_loss at 0.3)."""
    snippet = {'rlhf': {'lmbda': 0.0, 'seq_kd': False, 'temperature': 0.3, 'max_completion_length': 64}}
    warnings = load_and_validate(_overlay(tmp_path, 'gkd.yaml', snippet)).warnings
    assert any('forward-only GKD samples nothing, but ms-swift still divides the student\'s and the teacher\'s logits '
               'by this temperature before the KL, so it scales the KD term' in w for w in warnings)
    assert any(w.endswith('`rlhf.max_completion_length`: has no effect in forward-only GKD (`lmbda: 0`, `seq_kd: '
                          'false`): nothing is generated') for w in warnings)
    on_policy = load_and_validate(_overlay(tmp_path, 'gkd.yaml', {'rlhf': {**snippet['rlhf'], 'lmbda': 0.5}}))
    assert not any('forward-only' in w for w in on_policy.warnings)


def test_a_metric_an_sft_evaluation_does_not_log_is_refused_before_the_steps_before_it(tmp_path: Path):
    """`metric_for_best_model: acc` trained until the first evaluation, then stopped with transformers' KeyError."""
    with pytest.raises(ConfigError) as err:
        load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'metric_for_best_model': 'acc'}}))
    assert ("`training.metric_for_best_model`: 'acc' is not a metric an SFT evaluation logs (`loss`, `token_acc`, and "
            'per dataset `<name>_loss`, `<name>_token_acc`)') in str(err.value)
    for metric in ('loss', 'eval_token_acc', 'coco_loss', 'eval_data_eval_token_acc'):
        load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'metric_for_best_model': metric}}))
    load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'metric_for_best_model': 'rouge-l',
                                                                    'predict_with_generate': True}}))
    with pytest.raises(ConfigError) as err:  # GKD logs its terms beside the loss, and not `kl`
        load_and_validate(_overlay(tmp_path, 'gkd.yaml', {'training': {'metric_for_best_model': 'eval_kl'}}))
    assert ("'eval_kl' is not a metric a GKD evaluation logs (`loss`, `token_acc`, `sft_loss`, `llm_kd_loss`, "
            '`vision_kd_loss`, and per dataset') in str(err.value)
    for metric in ('eval_llm_kd_loss', 'token_acc', 'vision_kd_loss'):
        load_and_validate(_overlay(tmp_path, 'gkd.yaml', {'training': {'metric_for_best_model': metric}}))


def test_a_completion_room_as_long_as_the_sequence_is_refused_naming_both_keys(tmp_path: Path):
    """The playbook's GKD overlay without `lmbda` samples (ms-swift's default 0.5) with ms-swift's 512-token
    completion room inside the smoke recipe's 512; its GRPO advice (max_completion_length 2048) on a 512 recipe.
    Both showed up after the model loaded as one error per record against a limit of 0 or below."""
    gkd = {'rlhf': {'rlhf_type': 'gkd', 'teacher_model': '../../.cache/tiny-qwen3-vl', 'llm_kd_weight': 0.0}}
    with pytest.raises(ConfigError) as exc:
        load_and_validate(_overlay(tmp_path, 'lora.yaml', gkd))
    assert ('`rlhf.max_completion_length`: 512 tokens of room for each completion leave none for the prompt within '
            '`global_max_length` = 512 (GKD samples completions (`lmbda: 0.5`)); lower `rlhf.max_completion_length` '
            'or raise `global_max_length`') in str(exc.value)
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {'rlhf': {**gkd['rlhf'], 'max_completion_length': 64}}))
    assert any("`rlhf.lmbda` is not set, so ms-swift's default 0.5 applies: that share of batches is sampled from the "
               'student' in w for w in cfg.warnings)
    load_and_validate(_overlay(tmp_path, 'lora.yaml', {'rlhf': {**gkd['rlhf'], 'lmbda': 0.0}}))  # forward-only
    with pytest.raises(ConfigError) as exc:
        load_and_validate(_overlay(tmp_path, 'summary_grpo.yaml', {'rlhf': {'max_completion_length': 2048}}))
    assert ('2048 tokens of room for each completion leave none for the prompt within `global_max_length` = 512 '
            '(GRPO samples completions for every prompt)') in str(exc.value)


def test_num_train_epochs_over_an_inherited_max_steps_trains_the_epochs(tmp_path: Path):
    """The playbook's stage-1 `num_train_epochs: 3` pasted over the smoke recipe (`max_steps: 4`) trained 4 steps:
    transformers lets `max_steps` win. The config being run wins over its parents; else transformers' rule is said
    (two parents, one of each)."""
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'num_train_epochs': 3}}))
    assert cfg.training['max_steps'] == -1 and cfg.training['num_train_epochs'] == 3
    replaced = f"replaces the `training.max_steps: 4` of {SMOKE_CONFIGS / 'base.yaml'}: the run trains 3 epoch(s)"
    assert any(w.endswith(f'snippet.yaml: `training.num_train_epochs`: {replaced}') for w in cfg.warnings)
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {'training': {'num_train_epochs': 3, 'max_steps': 6}}))
    assert cfg.training['max_steps'] == 6
    assert any('`training.max_steps`: 6 steps override `num_train_epochs: 3`' in w for w in cfg.warnings)
    epochs = write_yaml(tmp_path / 'epochs.yaml', {'training': {'num_train_epochs': 2}})
    cfg = load_and_validate(_overlay(tmp_path, 'lora.yaml', {}, extends=[str(SMOKE_CONFIGS / 'lora.yaml'),
                                                                          str(epochs)]))
    assert cfg.training['max_steps'] == 4, 'neither is the run\'s own: transformers\' rule, said'
    assert any('`training.max_steps`: 4 steps override `num_train_epochs: 2`' in w for w in cfg.warnings)
