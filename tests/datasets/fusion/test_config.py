"""Bad fusion configs fail before training, each problem naming the file, the source and the key."""
from __future__ import annotations

from pathlib import Path

import pytest

from src.config import ConfigError, check_inputs_exist, load_and_validate
from src.config.fusion import load_fusion_config
from tests.conftest import SMOKE_DATA, write_yaml


def fusion_file(tmp_path: Path, sources: list[dict], **top) -> Path:
    return write_yaml(tmp_path / 'mix.yaml', {**top, 'sources': sources})


def problems(tmp_path: Path, sources: list[dict], **top) -> str:
    with pytest.raises(ConfigError) as exc:
        load_fusion_config(fusion_file(tmp_path, sources, **top), tmp_path)
    return str(exc.value)


def src(name: str, **kw) -> dict:
    return {'name': name, 'train_jsonl': str(SMOKE_DATA / 'train.jsonl'), **kw}


def test_valid_config_resolves_paths_and_defaults_eval_to_target_sources(tmp_path):
    path = fusion_file(tmp_path, [
        src('roads', val_jsonl=str(SMOKE_DATA / 'val.jsonl')),
        {'name': 'coco', 'train_jsonl': 'rel/coco.jsonl', 'domain': 'source', 'count': 5},
    ], seed=3)
    fusion = load_fusion_config(path, Path('/elsewhere'))
    assert fusion.seed == 3 and fusion.eval_sources == ['roads']
    assert fusion.sources[1].train_jsonl == tmp_path / 'rel' / 'coco.jsonl'  # relative to the fusion file
    assert fusion.sources[0].quota(32) == 32 and fusion.sources[1].quota(32) == 5


def test_missing_fusion_file(tmp_path):
    with pytest.raises(ConfigError, match='fusion config .*nope.yaml does not exist'):
        load_fusion_config('nope.yaml', tmp_path)


def test_negative_ratio_and_count(tmp_path):
    text = problems(tmp_path, [src('a', ratio=-0.5), src('b', count=-3), src('c', ratio=1, count=2)])
    assert 'sources[0] (`a`): `ratio` (samples per epoch / records): must be >= 0, got -0.5' in text
    assert 'sources[1] (`b`): `count` (samples per epoch): must be >= 0, got -3' in text
    assert 'sources[2] (`c`): set either `ratio` or `count`, not both' in text


def test_duplicate_names(tmp_path):
    assert 'sources[1]: duplicate source name `a`' in problems(tmp_path, [src('a'), src('a')])


def test_unknown_eval_source_and_source_without_val(tmp_path):
    text = problems(tmp_path, [src('a'), src('b')], eval_sources=['a', 'roadz'])
    assert '`eval_sources`: unknown source `roadz`; sources: a, b' in text
    assert '`eval_sources`: source `a` has no `val_jsonl` to evaluate on' in text


def test_bad_names_keys_domain_prompts_and_augmentation(tmp_path):
    text = problems(tmp_path, [
        src('has space'), src('token'), src('x', domian='target'), src('y', domain='aux'),
        src('z', prompts={'dens': 'hi'}), src('w', augmentation={'ops': [{'name': 'twirl'}]}),
    ], seeds=1)
    assert "unknown key `seeds`" in text
    assert "`name` must be letters, digits" in text and "name `token` is reserved" in text
    assert "(`x`): unknown key `domian`" in text
    assert "(`y`): `domain` must be one of target, source" in text
    assert "(`z`): `prompts.dens`: prompts are keyed by mode" in text
    assert "(`w`): `augmentation.ops[0]`: unknown op 'twirl'" in text


def test_all_zero_mixture(tmp_path):
    assert 'the mixture would be empty' in problems(tmp_path, [src('a', ratio=0), src('b', count=0)])


def test_missing_source_file_fails_before_training(tmp_path, make_config):
    mix = fusion_file(tmp_path, [src('a'), {'name': 'b', 'train_jsonl': 'missing.jsonl'}])
    cfg = load_and_validate(make_config('lora.yaml', custom={'train_jsonl': None, 'val_jsonl': None,
                                                            'fusion_config': str(mix)}))
    with pytest.raises(ConfigError, match=r'source `b`: `train_jsonl` file .*missing.jsonl does not exist'):
        check_inputs_exist(cfg)


def test_fusion_and_train_jsonl_together_is_an_error(tmp_path, make_config):
    mix = fusion_file(tmp_path, [src('a')])
    with pytest.raises(ConfigError) as exc:
        load_and_validate(make_config('lora.yaml', custom={'fusion_config': str(mix)}))
    assert 'with `custom.fusion_config` the sources name their own files; remove `custom.train_jsonl`' in str(exc.value)


def test_inline_fusion_errors_are_reported_with_the_config(tmp_path, make_config):
    with pytest.raises(ConfigError) as exc:
        load_and_validate(make_config('lora.yaml', custom={'train_jsonl': None, 'val_jsonl': None,
                                                          'fusion_config': {'sources': [src('a', ratio='half')]}}))
    assert ('`custom.fusion_config`: <inline custom.fusion_config>: sources[0] (`a`): `ratio` (samples per epoch'
            in str(exc.value))


def test_dataset_domains_marks_sources_as_the_playbook_writes_it(tmp_path):
    val = str(SMOKE_DATA / 'val.jsonl')
    fusion = load_fusion_config(fusion_file(tmp_path, [src('bbu', val_jsonl=val), src('lvis', val_jsonl=val)],
                                            dataset_domains={'bbu': 'target', 'lvis': 'source'}), tmp_path)
    assert [s.domain for s in fusion.sources] == ['target', 'source'] and fusion.eval_sources == ['bbu']
    text = problems(tmp_path, [src('bbu', domain='target'), src('lvis')],
                    dataset_domains={'bbu': 'source', 'lviss': 'source', 'lvis': 'other'})
    assert '`dataset_domains.bbu`: source disagrees with the source\'s own `domain: target`' in text
    assert '`dataset_domains.lviss`: unknown source; sources: bbu, lvis' in text
    assert "`dataset_domains.lvis`: must be one of target, source, got 'other'" in text


def test_evaluation_asked_for_without_validation_records_says_why_it_is_off(make_config):
    """A fusion whose only `val_jsonl` is a `domain: source` source has nothing to evaluate: ms-swift turned
    `eval_strategy: steps` off without a word."""
    from src.config import load_and_validate
    from tests.conftest import SMOKE_DATA

    fusion = {'sources': [{'name': 'extra', 'train_jsonl': str(SMOKE_DATA / 'train.jsonl'),
                           'val_jsonl': str(SMOKE_DATA / 'val.jsonl'), 'domain': 'source'}]}
    cfg = load_and_validate(make_config('fusion.yaml', custom={'fusion_config': fusion},
                                        training={'eval_strategy': 'steps'}))
    assert any("`training.eval_strategy`: 'steps', but the run has no validation records, so ms-swift turns "
               'evaluation off; the fusion sources with a `val_jsonl` (extra) are not in `eval_sources` (by default '
               'the `domain: target` ones)' in w
               for w in cfg.warnings), cfg.warnings
