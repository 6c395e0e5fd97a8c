"""`custom.augmentation` (and a fusion source's `augmentation`): which ops, how likely, with what parameters.

    custom:
      augmentation:
        enabled: true              # false keeps the block but turns augmentation off
        rotate_box_to: bbox        # or poly: a rotated box becomes the polygon of its corners
        fill: 0                    # the grey level of pixels a geometric op uncovers
        ops:
          - {name: hflip, prob: 0.5}
          - {name: rotate, prob: 0.3, max_deg: 10}
          - {name: crop, prob: 0.3, min_scale: 0.7}
          - {name: color_jitter, prob: 0.5, brightness: 0.2}            # factor in [0.8, 1.2]
          - name: color_jitter                                          # the playbook's spelling: same thing
            params: {brightness: [0.85, 1.15], prob: 0.3}

An op's settings (`prob` and its parameters) go next to `name` or inside `params:`; colour factors take a number x
(a factor in [1 - x, 1 + x]) or a range [low, high]. A bare `color_jitter` jitters brightness, contrast and saturation
by 0.2 each; naming some of them jitters those only (the playbook's `brightness: [0.85, 1.15]`: brightness alone).

Parsed once, with the config, into an ``AugmentationSpec``; the image code (``src/datasets/augmentation``) builds its
``Augmenter`` from that. ``OP_PARAMS`` lists every op with its parameters, their defaults (the only place they are
written: the ops take every parameter from ``OpSpec.arguments``) and their bounds; ``PAIRS`` lists the parameters
that are the two ends of one range. A test checks the names against the ops' own signatures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .bounds import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, PROBABILITY, Bound, is_number, pair_problem

KeyPath = tuple[str, ...]
Problem = tuple[KeyPath, str]
"""A problem and the key path (inside the `augmentation` mapping) of the value it is about."""


@dataclass(frozen=True)
class Param:
    """One parameter of an op: its default and the numbers it takes."""

    default: float
    bound: Bound


SCALE = POSITIVE
CROP_SCALE = Bound(0, 1, low_inclusive=False)  # a side of the window as a fraction of the image's (0 keeps nothing)
FACTOR = NON_NEGATIVE
GEOMETRIC = {
    'hflip': {},
    'vflip': {},
    'rotate': {'max_deg': Param(10.0, Bound(0, 180))},
    'scale': {'min_scale': Param(0.8, SCALE), 'max_scale': Param(1.2, SCALE)},
    'crop': {'min_scale': Param(0.6, CROP_SCALE), 'max_scale': Param(1.0, CROP_SCALE)},
    'resize_by_scale': {'min_scale': Param(0.75, SCALE), 'max_scale': Param(1.25, SCALE)},
    'pad_to_multiple': {'multiple': Param(32, AT_LEAST_ONE)},
}
COLOUR = {
    'color_jitter': {'brightness': Param(0.2, FACTOR), 'contrast': Param(0.2, FACTOR),
                     'saturation': Param(0.2, FACTOR)},
    'gamma': {'min_gamma': Param(0.8, POSITIVE), 'max_gamma': Param(1.25, POSITIVE)},
    'clahe': {'clip_limit': Param(2.0, POSITIVE), 'tile': Param(8, AT_LEAST_ONE)},
    'autocontrast': {'cutoff': Param(1.0, Bound(0, 50, high_inclusive=False))},  # percent cut from each end
}
OP_PARAMS: dict[str, dict[str, Param]] = {**GEOMETRIC, **COLOUR}
# The two ends of one range, per op: the low end may not be above the high end.
PAIRS = {'scale': ('min_scale', 'max_scale'), 'crop': ('min_scale', 'max_scale'),
         'resize_by_scale': ('min_scale', 'max_scale'), 'gamma': ('min_gamma', 'max_gamma')}
ROTATE_BOX_TO = ('bbox', 'poly')
KEYS = ('enabled', 'ops', 'rotate_box_to', 'fill')
PROB = PROBABILITY
FILL = Bound(0, 255, integer=True)
# Parameters that also take a range [low, high] (of the factor itself).
RANGE_PARAMS = {('color_jitter', 'brightness'), ('color_jitter', 'contrast'), ('color_jitter', 'saturation')}
# color_jitter's three amounts: a bare op jitters each by its default; naming some leaves the others still (0).
JITTER = ('brightness', 'contrast', 'saturation')


@dataclass(frozen=True)
class OpSpec:
    """One op: its name, the probability that it fires for a sample, and the parameters the config sets (the rest
    take the defaults in ``OP_PARAMS``); a range parameter is a [low, high] list."""

    name: str
    prob: float
    params: dict[str, float | list[float]] = field(default_factory=dict)

    def arguments(self) -> dict[str, float | list[float]]:
        """Every parameter of the op: the config's, else the default."""
        return {**{k: p.default for k, p in OP_PARAMS[self.name].items()}, **self.params}


@dataclass(frozen=True)
class AugmentationSpec:
    """A parsed `augmentation` mapping."""

    ops: tuple[OpSpec, ...]
    rotate_box_to: str = 'bbox'
    fill: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The mapping as it is written in YAML (what `resolved_config.yaml` records)."""
        return {'rotate_box_to': self.rotate_box_to, 'fill': self.fill,
                'ops': [{'name': op.name, 'prob': op.prob, **op.arguments()} for op in self.ops]}  # defaults too


def parse_augmentation(spec: Any) -> tuple[AugmentationSpec | None, list[Problem]]:
    """The YAML mapping as an ``AugmentationSpec`` (None when empty, `enabled: false` or invalid), and the problems,
    each with the key path of the value it is about."""
    if not spec:
        return None, []
    if not isinstance(spec, dict):
        return None, [((), f'must be a mapping with `ops` (and optionally `enabled`, `rotate_box_to`, `fill`), got '
                           f'{spec!r}')]
    problems: list[Problem] = [((str(k), ), f'unknown key (valid: {", ".join(KEYS)})') for k in spec if k not in KEYS]
    enabled = spec.get('enabled', True)
    if not isinstance(enabled, bool):
        problems.append((('enabled', ), f'must be true or false, got {enabled!r}'))
    rotate_box_to = spec.get('rotate_box_to', 'bbox')
    if rotate_box_to not in ROTATE_BOX_TO:
        problems.append((('rotate_box_to', ), f'must be one of {ROTATE_BOX_TO}, got {rotate_box_to!r}'))
    fill = spec.get('fill', 0)
    if (problem := FILL.problem(fill)) is not None:
        problems.append((('fill', ), f'a grey level: {problem}'))
    ops = spec.get('ops') or []
    if not isinstance(ops, list):
        problems.append((('ops', ), f'must be a list of {{name, prob, ...}} entries, got {ops!r}'))
        ops = []
    parsed = [op for i, entry in enumerate(ops) if (op := _parse_op(i, entry, problems)) is not None]
    if problems or enabled is False:
        return None, problems
    return AugmentationSpec(tuple(parsed), rotate_box_to, int(fill)), []


def _parse_op(i: int, entry: Any, problems: list[Problem]) -> OpSpec | None:
    name = entry.get('name') if isinstance(entry, dict) else None
    here = ('ops', f'[{i}]')
    if name not in OP_PARAMS:
        problems.append((here, f'unknown op {name!r}; valid ops: {", ".join(OP_PARAMS)}'))
        return None
    settings = {k: v for k, v in entry.items() if k not in ('name', 'params')}
    nested = entry.get('params', {})
    if not isinstance(nested, dict):
        problems.append((here + ('params', ), f'({name}) must be a mapping of parameters, got {nested!r}'))
        nested = {}
    for key in settings.keys() & nested.keys():
        problems.append((here, f'({name}) `{key}` is set both beside `name` and in `params`; keep one'))
    settings.update(nested)
    prob = settings.pop('prob', 1.0)
    if (problem := PROB.problem(prob)) is not None:
        problems.append((here + ('prob', ), f'({name}) {problem}'))
    valid = OP_PARAMS[name]
    for key, value in settings.items():
        if key not in valid:
            problems.append((here, f'({name}) unknown parameter `{key}`; valid: {", ".join(valid) or "none"}'))
        elif (name, key) in RANGE_PARAMS and isinstance(value, list):
            if len(value) != 2 or any(valid[key].bound.problem(v) for v in value) or value[0] > value[1]:
                problems.append((here + (key, ), f'({name}) a range must be [low, high] with 0 <= low <= high, both '
                                                 f'finite, got {value!r}'))
        elif (problem := valid[key].bound.problem(value)) is not None:
            kind = ' (or a range [low, high])' if (name, key) in RANGE_PARAMS else ''
            problems.append((here + (key, ), f'({name}) {problem}{kind}'))
    jittered = [key for key in JITTER if key in settings]
    if name == 'color_jitter' and jittered:  # the ones left out stay still: `brightness` alone jitters brightness only
        settings.update({key: 0.0 for key in JITTER if key not in settings})
    if name in PAIRS:
        low, high = PAIRS[name]
        values = {k: settings.get(k, valid[k].default) for k in (low, high)}
        if (problem := pair_problem(low, values[low], high, values[high])) is not None:
            set_here = [k for k in (low, high) if k in settings]
            problems.append((here + (set_here[-1], ) if set_here else here, f'({name}) {problem}'))
    return OpSpec(name, float(prob) if is_number(prob) else 0.0, settings)
