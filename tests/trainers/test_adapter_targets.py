"""The freeze flags hold for an adapter whatever `tuner.target_modules` lists: ms-swift applies them to `all-linear`
only, so `[q_proj, v_proj, qkv]` with `freeze_vit: true` put LoRA on the ViT, and the playbook's lm_head recipe (an
explicit list under the inherited `freeze_vit: true`) adapted the whole ViT."""
from pathlib import Path

import pytest

from src.config import ConfigError, load_and_validate
from src.config.module_names import weight_module_names
from src.sft import main
from src.trainers.adapter_targets import Layout, adapter_targets, loaded_names
from src.trainers.swift_args import sft_argument_kwargs

LM_HEAD_RECIPE = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'up_proj', 'gate_proj', 'down_proj', 'qkv', 'proj',
                  'linear_fc1', 'linear_fc2', 'lm_head']


def targeted(make_config, tiny_model: Path, **tuner) -> tuple[dict[str, set[str]], list[str]]:
    """Per component, the module names of the tiny model the run's adapter goes on; and the notices."""
    import re

    cfg = load_and_validate(make_config('lora.yaml', tuner=tuner))
    regex = sft_argument_kwargs(cfg)['target_regex']
    layout = Layout.of('qwen3_vl')
    hit: dict[str, set[str]] = {}
    for name in weight_module_names(tiny_model):
        if re.fullmatch(regex, name):
            hit.setdefault(layout.component(name), set()).add(name)
    return hit, adapter_targets(cfg)[1]


def test_the_playbooks_lm_head_recipe_adapts_llm_aligner_and_lm_head_and_leaves_the_frozen_vit(make_config,
                                                                                             tiny_model):
    hit, notices = targeted(make_config, tiny_model, target_modules=LM_HEAD_RECIPE)  # freeze_vit: true inherited
    assert set(hit) == {'llm', 'aligner'} and 'lm_head' in hit['llm']
    assert {n.rsplit('.', 1)[1] for n in hit['aligner']} == {'linear_fc1', 'linear_fc2'}
    assert any(n.endswith("'qkv' names modules of the ViT, which `tuner.freeze_vit: true` keeps frozen: no adapter "
                          'goes there') for n in notices)
    assert any(n.endswith("'linear_fc1' names modules of the ViT, which `tuner.freeze_vit: true` keeps frozen: the "
                          'adapter goes on those of the aligner only') for n in notices)


@pytest.mark.parametrize('flags, components', [
    ({'freeze_vit': False, 'freeze_aligner': True, 'freeze_llm': True}, {'vit'}),
    ({'freeze_vit': False, 'freeze_aligner': False, 'freeze_llm': True}, {'vit', 'aligner'}),
    ({'freeze_vit': True, 'freeze_aligner': False, 'freeze_llm': True}, {'aligner'}),
    ({'freeze_vit': True, 'freeze_aligner': True, 'freeze_llm': False}, {'llm'}),
])
def test_every_combination_of_flags_limits_the_list_to_the_unfrozen_components(make_config, tiny_model, flags,
                                                                               components):
    hit, _ = targeted(make_config, tiny_model, target_modules=LM_HEAD_RECIPE, **flags)
    assert set(hit) == components


def test_a_list_with_nothing_in_the_unfrozen_components_is_refused_before_the_model_loads(make_config, tiny_model):
    config = make_config('lora.yaml', tuner={'target_modules': ['q_proj', 'qkv'], 'freeze_llm': True,
                                             'freeze_vit': True, 'freeze_aligner': False})
    with pytest.raises(ConfigError) as caught:
        adapter_targets(load_and_validate(config))
    message = str(caught.value)
    assert ('`tuner.target_modules`: no entry names a module of the aligner, the only component(s) the freeze flags '
            'leave to adapt, so the adapter would have no module:') in message
    assert "'qkv' names modules of the ViT, which `tuner.freeze_vit: true` keeps frozen" in message


@pytest.mark.parametrize('tuner, expected', [
    ({'target_modules': ['all-linear', 'lm_head']}, "'lm_head' beside `all-linear`: for a multimodal model ms-swift "
                                                    'expands `all-linear` alone and drops the other names'),
    ({'target_modules': ['q_proj'], 'freeze_llm': True, 'freeze_vit': True, 'freeze_aligner': True},
     '`tuner.freeze_llm`, `freeze_vit` and `freeze_aligner` are all true, so the adapter has no module to go on'),
])
def test_lists_ms_swift_would_not_apply_as_written_are_refused(make_config, tiny_model, tuner, expected):
    with pytest.raises(ConfigError, match='`tuner.target_modules`') as caught:
        adapter_targets(load_and_validate(make_config('lora.yaml', tuner=tuner)))
    assert expected in str(caught.value)


def test_all_linear_and_a_full_run_are_left_to_ms_swift(make_config, tiny_model):
    for tuner in ({'target_modules': ['all-linear']}, {'train_type': 'full', 'target_modules': ['q_proj']}):
        assert adapter_targets(load_and_validate(make_config('lora.yaml', tuner=tuner))) == ({}, [])


@pytest.fixture(scope='module')
def tiny_qwen25(tmp_path_factory) -> Path:
    from src.testing.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp('models') / 'tiny-qwen2.5-vl', arch='qwen2_5_vl')


def test_a_qwen25_checkpoint_in_the_older_weight_layout_is_matched_by_its_loaded_names(tmp_path, tiny_qwen25):
    """Qwen2.5-VL checkpoints store `visual.*` and `model.layers.*`, which transformers loads as `model.visual.*` and
    `model.language_model.*`: a list of LLM projections was refused as naming nothing, with no notice."""
    import re

    import yaml

    from tests.conftest import SMOKE_CONFIGS

    config = tmp_path / 'q25.yaml'
    config.write_text(yaml.safe_dump({'extends': str(SMOKE_CONFIGS / 'qwen2_5_vl_lora.yaml'),
                                      'model': {'model': str(tiny_qwen25)},
                                      'tuner': {'target_modules': ['q_proj', 'v_proj', 'qkv']}}))
    cfg = load_and_validate(config)
    kwargs, notices = adapter_targets(cfg)
    layout = Layout.of('qwen2_5_vl')
    hit = {layout.component(n) for n in loaded_names(weight_module_names(tiny_qwen25))
           if re.fullmatch(kwargs['target_regex'], n)}
    assert hit == {'llm'}
    assert [n.split(': ', 2)[-1] for n in notices] == [
        "`tuner.target_modules`: 'qkv' names modules of the ViT, which `tuner.freeze_vit: true` keeps frozen: no "
        'adapter goes there']


@pytest.mark.slow
def test_the_adapter_the_model_gets_leaves_the_frozen_vit_untouched(make_config, tiny_model):
    """End to end (the model loaded, PEFT applied): the report's trainable parameters per component. (The tiny
    model ties `lm_head` to its embeddings, which refuses a LoRA on it: the recipe without it.)"""
    report = main(make_config('lora.yaml', tuner={'target_modules': LM_HEAD_RECIPE[:-1]}), debug=True)
    rows = {line.split()[0]: int(line.split()[1].replace(',', '')) for line in report.splitlines()
            if line.split()[:1] and line.split()[0] in ('vit', 'aligner', 'llm')}
    assert rows['vit'] == 0 and rows['aligner'] > 0 and rows['llm'] > 0


@pytest.mark.slow
def test_resuming_a_checkpoint_whose_list_also_adapted_frozen_components_says_why_no_config_fits(make_config,
                                                                                                tiny_model, tmp_path):
    """Before, a `target_modules` list put adapters on frozen components too; such a checkpoint cannot be resumed
    under the new placement, and "resume with the settings it was trained with" alone had no config to point to."""
    import json

    checkpoint = tmp_path / 'old' / 'checkpoint-2'
    checkpoint.mkdir(parents=True)
    (checkpoint / 'args.json').write_text(json.dumps({'tuner_type': 'lora', 'target_modules': ['q_proj', 'qkv'],
                                                      'target_regex': None}))
    config = make_config('lora.yaml', tuner={'target_modules': ['q_proj', 'qkv']},
                         training={'resume_from_checkpoint': str(checkpoint)})
    with pytest.raises(ConfigError) as err:
        main(config)
    message = str(err.value)
    assert "`tuner.target_regex`: None in the checkpoint" in message
    assert ('(a `target_modules` list now leaves the components the freeze flags keep frozen without an adapter; a '
            'checkpoint trained before that has adapters there too, and no config gives them back: start a new stage '
            'from it)') in message


def test_a_target_regex_over_a_frozen_component_is_said_not_ignored(make_config, tiny_model):
    """A regex reaches PEFT as written: `freeze_vit: true` beside `.*\\.qkv|.*q_proj` put LoRA on the ViT without a
    word. The adapter still goes where the regex says; the notice names the flag it overrides."""
    cfg = load_and_validate(make_config('lora.yaml', tuner={'target_regex': r'.*\.(qkv|q_proj)', 'freeze_vit': True}))
    kwargs, notices = adapter_targets(cfg)
    assert kwargs == {}
    [notice] = notices
    assert '`tuner.target_regex` matches ' in notice and ('module(s) of the ViT, which `tuner.freeze_vit: true` '
                                                          'keeps frozen: the adapter goes there anyway') in notice
    llm_only = load_and_validate(make_config('lora.yaml', tuner={'target_regex': r'.*language_model.*\.q_proj'}))
    assert adapter_targets(llm_only) == ({}, [])
