"""Every number a config holds goes through one bound: NaN is always refused, infinity unless the knob says it means
"no limit", counts are whole, the two ends of a range are checked together. The tests walk every declared knob
(ms-swift's fields, the project's, augmentation, video, visual KD, fusion) instead of naming a few."""
import math
from pathlib import Path

import pytest

from src.config import ConfigError, load_and_validate
from src.config.augmentation import OP_PARAMS, PAIRS, RANGE_PARAMS, parse_augmentation
from src.config.bounds import Bound
from src.config.fusion import parse_fusion_config
from src.config.schema import SECTIONS, section_fields
from src.config.types import fits
from src.config.values import BOUNDS, value_problem
from src.config.video import ENVIRONMENT, parse_video
from src.config.visual_kd import parse_visual_kd
from tests.config.test_validate import _config

NUMERIC_SECTIONS = [s for s in SECTIONS if s != 'deepspeed']


def _numeric_fields(kind: float) -> list[tuple[str, str]]:
    """(section, key) of every field that takes a number like ``kind`` (a float, or an int)."""
    return [(section, key) for section in NUMERIC_SECTIONS for key, spec in section_fields(section).items()
            if fits(kind, spec)]


def test_every_bound_names_a_real_field():
    for section, key in BOUNDS:
        assert key in section_fields(section), f'{section}.{key} is bounded but is no field: the bound is dead'


@pytest.mark.parametrize('value', [math.nan, math.inf, -math.inf])
def test_every_float_knob_refuses_nan_and_infinity(value: float):
    """Each field that takes a float, with ``value``, through the same check validation runs for every key."""
    for section, key in _numeric_fields(1.5):
        problem = value_problem(section, key, value, section_fields(section)[key])
        bound = BOUNDS.get((section, key))
        if value == math.inf and bound is not None and bound.unbounded:
            assert problem is None, f'{section}.{key} says .inf means no limit'
        else:
            assert problem is not None and ('NaN' in problem or 'inf' in problem), (section, key, problem)


def test_a_config_full_of_nan_is_refused_key_by_key_before_anything_loads(tmp_path: Path):
    """Validation itself, not only the bound: every float knob set to NaN at once is one error per key."""
    sections: dict[str, dict] = {}
    for section, key in _numeric_fields(1.5):
        if (section, key) not in (('rlhf', 'temperature'), ) and not key.startswith('dataloader_'):  # aliases
            sections.setdefault(section, {})[key] = math.nan
    with pytest.raises(ConfigError) as err:
        load_and_validate(_config(tmp_path, **sections))
    text = str(err.value)
    for section, keys in sections.items():
        for key in keys:
            assert f'`{section}.{key}`: ' in text and 'NaN' in text, f'{section}.{key} was not refused'


@pytest.mark.parametrize('path', sorted(BOUNDS))
def test_each_declared_bound_holds_at_its_edges(path: tuple[str, str]):
    section, key = path
    bound, spec = BOUNDS[path], section_fields(section)[key]

    def refused(value) -> bool:
        if not fits(value, spec) and float(value).is_integer():
            value = int(value)
        return fits(value, spec) and value_problem(section, key, value, spec) is not None

    for edge, inclusive, step in ((bound.low, bound.low_inclusive, -1), (bound.high, bound.high_inclusive, 1)):
        if edge is None:
            continue
        inside = edge if inclusive else edge - step * (1 if bound.integer else 1e-6)
        outside = edge + step * (1 if bound.integer else 1e-6) if inclusive else edge
        assert value_problem(section, key, int(inside) if bound.integer else inside, spec) is None, (path, inside)
        assert refused(int(outside) if bound.integer else float(outside)) or outside in bound.also, (path, outside)
    if bound.integer and fits(1.5, spec):
        assert refused(1.5), f'{section}.{key} counts something: 1.5 is not a count'


def test_a_nan_inside_a_mapping_knob_is_named_with_its_inner_key(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_and_validate(_config(tmp_path, training={'lr_scheduler_type': 'cosine_with_min_lr',
                                                      'lr_scheduler_kwargs': {'min_lr': math.nan}}))
    assert '`training.lr_scheduler_kwargs`: `min_lr`: must be a finite number, got nan' in str(err.value)


def test_the_playbook_cosine_min_lr_snippet_still_passes(tmp_path: Path):
    load_and_validate(_config(tmp_path, training={'lr_scheduler_type': 'cosine_with_min_lr',
                                                  'lr_scheduler_kwargs': {'min_lr': 1.0e-6}}))


def test_lora_alpha_nan_which_once_trained_to_the_end_on_nan_gradients(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_and_validate(_config(tmp_path, tuner={'lora_alpha': math.nan}))
    assert '`tuner.lora_alpha`: must be a finite number > 0, got NaN' in str(err.value)


def test_an_unbounded_knob_says_so_and_takes_inf(tmp_path: Path):
    assert str(BOUNDS[('training', 'max_grad_norm')]) == '>= 0 (.inf: no limit)'
    cfg = load_and_validate(_config(tmp_path, training={'max_grad_norm': math.inf}))
    assert cfg.training['max_grad_norm'] == math.inf


def test_seed_beyond_numpy_range_and_fractional_counts(tmp_path: Path):
    with pytest.raises(ConfigError) as err:
        load_and_validate(_config(tmp_path, training={'seed': 2**32, 'save_total_limit': 0},
                                  custom={'sample_limit': 0}))
    text = str(err.value)
    assert '`training.seed`: must be in [0, 4.29497e+09], got 4294967296' in text
    assert '`training.save_total_limit`: must be >= 1, got 0' in text
    assert '`custom.sample_limit`: must be >= 1, got 0' in text


@pytest.mark.parametrize('family,side', [('qwen3_vl', 32), ('qwen2_5_vl', 28)])
def test_max_pixels_below_one_merged_patch_is_refused(tmp_path: Path, family: str, side: int):
    with pytest.raises(ConfigError) as err:
        load_and_validate(_config(tmp_path, model={'model_type': family}, template={'max_pixels': side * side - 1},
                                  custom={'video': {'max_pixels': 10}}))
    text = str(err.value)
    assert f'`template.max_pixels`: {side * side - 1} is less than one {side}x{side} merged patch' in text
    assert f'`custom.video.max_pixels`: 10 is less than one {side}x{side} merged patch' in text
    load_and_validate(_config(tmp_path, model={'model_type': family}, template={'max_pixels': side * side}))


# The project's own nested knobs: each parser is fed NaN, inf and each edge of every parameter.

def _augmentation_problems(op: str, **params) -> list[str]:
    return [m for _, m in parse_augmentation({'ops': [{'name': op, **params}]})[1]]


@pytest.mark.parametrize('op,param', [(op, p) for op, params in OP_PARAMS.items() for p in params] +
                         [(op, 'prob') for op in OP_PARAMS])
def test_every_augmentation_parameter_refuses_nan_inf_and_its_edges(op: str, param: str):
    from src.config.augmentation import PROB

    bound: Bound = PROB if param == 'prob' else OP_PARAMS[op][param].bound
    for bad in (math.nan, math.inf, -math.inf, 'x', True):
        assert _augmentation_problems(op, **{param: bad}), (op, param, bad)
    if bound.low is not None:
        assert not _augmentation_problems(op, **{param: bound.low}) if bound.low_inclusive else \
            _augmentation_problems(op, **{param: bound.low})
        assert _augmentation_problems(op, **{param: bound.low - 1})
    if bound.high is not None:
        assert _augmentation_problems(op, **{param: bound.high + 1})
    if bound.integer:
        assert _augmentation_problems(op, **{param: 2.5})
    if (op, param) in RANGE_PARAMS:
        assert not _augmentation_problems(op, **{param: [0.8, 1.2]})
        for bad in ([1.2, 0.8], [math.nan, 1.0], [0.5, math.inf], [-0.1, 1.0], [1.0]):
            assert _augmentation_problems(op, **{param: bad}), (op, param, bad)


@pytest.mark.parametrize('op', sorted(PAIRS))
def test_augmentation_ranges_are_checked_as_pairs_defaults_included(op: str):
    low, high = PAIRS[op]
    assert _augmentation_problems(op, **{low: 0.9, high: 0.5}) == [
        f'({op}) `{low}` (0.9) is above `{high}` (0.5); the range would be empty']
    above_default_high = OP_PARAMS[op][high].default + 0.1
    if OP_PARAMS[op][low].bound.admits(above_default_high):
        assert _augmentation_problems(op, **{low: above_default_high}), 'the default high end counts too'


def test_fill_is_a_grey_level():
    for bad in (math.nan, 256, -1, 1.5):
        assert parse_augmentation({'ops': [], 'fill': bad})[1], bad


@pytest.mark.parametrize('key', sorted(ENVIRONMENT))
def test_every_video_knob_refuses_nan_inf_zero_and_fractions_where_it_counts(key: str):
    bound = ENVIRONMENT[key][2]
    for bad in (math.nan, math.inf, 0, -1):
        assert parse_video({key: bad})[1], (key, bad)
    if bound.integer:
        assert parse_video({key: 1.5})[1]
    assert not parse_video({key: 2})[1]


def test_video_ranges_are_pairs():
    for low, high in (('min_frames', 'max_frames'), ('min_pixels', 'max_pixels')):
        [(path, message)] = parse_video({low: 64, high: 32})[1]
        assert path == (high, ) and message.startswith(f'`{low}` (64) is above `{high}` (32)')


def test_visual_kd_weight_refuses_nan_and_inf():
    for bad in (math.nan, math.inf, -0.5):
        assert parse_visual_kd({'aligner': {'weight': bad}})[1], bad
    assert parse_visual_kd({'aligner': {'weight': 0}})[0]['aligner'].weight == 0


@pytest.mark.parametrize('key,bad', [('ratio', math.nan), ('ratio', math.inf), ('ratio', -0.1), ('count', math.nan),
                                     ('count', math.inf), ('count', 2.5), ('count', -1)])
def test_fusion_quota_refuses_nan_inf_and_fractions(tmp_path: Path, key: str, bad: float):
    with pytest.raises(ConfigError) as err:
        parse_fusion_config({'sources': [{'name': 'a', 'train_jsonl': 'a.jsonl', key: bad}]}, tmp_path, 'mix.yaml')
    assert f'`{key}`' in str(err.value)


@pytest.mark.parametrize('bad', [math.nan, -1, 2**32, 1.5])
def test_fusion_seed_is_a_seed(tmp_path: Path, bad):
    with pytest.raises(ConfigError, match='`seed`: must be'):
        parse_fusion_config({'seed': bad, 'sources': [{'name': 'a', 'train_jsonl': 'a.jsonl'}]}, tmp_path, 'mix')
