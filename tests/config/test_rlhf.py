"""Post-training settings are checked with the config, before any model loads."""
from __future__ import annotations

import pytest

from src.config import ConfigError, load_and_validate
from src.sft import cli


def _problems(make_config, **sections) -> str:
    with pytest.raises(ConfigError) as exc:
        load_and_validate(make_config('summary_grpo.yaml', **sections))
    return str(exc.value)


def test_grpo_config_gets_the_project_defaults(make_config):
    cfg = load_and_validate(make_config('summary.yaml', rlhf={'rlhf_type': 'grpo', 'num_generations': 2,
                                                              'reward_funcs': ['summary_format']},
                                        global_max_length=4096))  # room for the default 2048-token completions
    assert cfg.training['temperature'] == 0.3 and cfg.rlhf['max_completion_length'] == 2048
    assert cfg.template['truncation_strategy'] == 'left'  # ms-swift's GRPO takes only left; prompts are pre-checked


def test_num_generations_must_divide_the_generation_batch(make_config):
    text = _problems(make_config, rlhf={'num_generations': 3})
    assert '`rlhf.generation_batch_size`: num_generations (3) must divide the generation batch (4 trajectories' in text


def test_default_generation_batch_is_micro_batch_times_accumulation(make_config):
    text = _problems(make_config, rlhf={'generation_batch_size': None, 'num_generations': 3})
    assert '`rlhf.num_generations`: num_generations (3) must divide the generation batch (4 trajectories' in text


def test_generation_batch_multiple_of_micro_batch_and_at_least_two_generations(make_config):
    text = _problems(make_config, rlhf={'generation_batch_size': 5, 'num_generations': 1})
    assert 'must be a multiple of per_device_train_batch_size (2)' in text
    assert 'GRPO compares completions of one prompt; use at least 2' in text


def test_lora_with_a_reference_model_is_an_error_that_says_why(make_config):
    text = _problems(make_config, rlhf={'ref_model': '/models/base'})
    assert 'with LoRA the reference policy is the base model with the adapter switched off' in text


def test_rewards_weights_and_mode(make_config):
    text = _problems(make_config, rlhf={'reward_funcs': ['summary_format', 'summary_fromat'],
                                        'reward_weights': [1.0]}, custom={'mode': 'dense'})
    assert "unknown reward 'summary_fromat'; available: summary_format" in text
    assert '1 weights for 2 reward functions' in text
    assert 'set `custom.mode: summary`' in text


def test_rlhf_keys_without_a_type_and_unsupported_types(make_config):
    text = _problems(make_config, rlhf={'rlhf_type': 'ppo'})
    assert "'ppo' is not available in this version; supported: grpo" in text
    with pytest.raises(ConfigError, match='the `rlhf` section applies to post-training only'):
        load_and_validate(make_config('lora.yaml', rlhf={'beta': 0.1}))


def test_invalid_rollout_settings_stop_the_cli_before_any_model_loads(make_config, capsys):
    path = make_config('summary_grpo.yaml', model={'model': '/nonexistent/model'}, rlhf={'num_generations': 3})
    assert cli(['--config', str(path)]) == 2
    err = capsys.readouterr().err
    assert 'num_generations (3) must divide' in err and 'does not exist' not in err


def test_summary_prompt_variants_need_two_prompts_and_summary_mode(make_config):
    with pytest.raises(ConfigError, match='give at least two non-empty prompts'):
        load_and_validate(make_config('summary.yaml', custom={'summary_prompt_variants': ['only one']}))
    with pytest.raises(ConfigError, match='applies to `custom.mode: summary` only'):
        load_and_validate(make_config('lora.yaml', custom={'summary_prompt_variants': ['a', 'b']}))


def test_rewards_from_an_ms_swift_plugin_file(make_config, tmp_path):
    plugin = tmp_path / 'my_rewards.py'
    plugin.write_text('from swift.rewards import ORM, orms\n\n\nclass Short(ORM):\n'
                      '    def __call__(self, completions, **kwargs):\n'
                      '        return [1.0 / (1 + len(c)) for c in completions]\n\n\n'
                      "orms['short'] = Short\n")
    rlhf = {'reward_funcs': ['short'], 'reward_weights': [1.0]}
    plugins = {'external_plugins': [str(plugin)]}
    cfg = load_and_validate(make_config('summary_grpo.yaml', rlhf=rlhf, training=plugins))
    assert cfg.training['external_plugins'] == [str(plugin)]
    text = _problems(make_config, rlhf={'reward_funcs': ['shrot'], 'reward_weights': [1.0]},
                     training={'external_plugins': [str(plugin)]})
    assert "unknown reward 'shrot'; available: summary_format" in text and ', short (a file in' in text
    text = _problems(make_config, training={'external_plugins': [str(tmp_path / 'missing.py')]})
    assert '`training.external_plugins`: cannot read plugin' in text and 'missing.py' in text


def test_seeded_rollouts_are_for_grpo_without_vllm(make_config):
    text = _problems(make_config, rlhf={'seeded_rollouts': True, 'use_vllm': True})
    assert '`rlhf.seeded_rollouts`: seeds each completion in the transformers engine; vLLM' in text
    with pytest.raises(ConfigError) as exc:
        load_and_validate(make_config('lora.yaml', rlhf={'seeded_rollouts': True}))
    assert '`rlhf.seeded_rollouts`: applies to GRPO only (`rlhf.rlhf_type: grpo`)' in str(exc.value)
