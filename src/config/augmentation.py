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
(a factor in [1 - x, 1 + x]) or a range [low, high].

Parsed once, with the config, into an ``AugmentationSpec``; the image code (``src/datasets/augmentation``) builds its
``Augmenter`` from that. ``OP_PARAMS`` lists every op with its parameters and defaults; a test checks it against the
ops' own signatures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

GEOMETRIC = {
    'hflip': {},
    'vflip': {},
    'rotate': {'max_deg': 10.0},
    'scale': {'min_scale': 0.8, 'max_scale': 1.2},
    'crop': {'min_scale': 0.6, 'max_scale': 1.0},
    'resize_by_scale': {'min_scale': 0.75, 'max_scale': 1.25},
    'pad_to_multiple': {'multiple': 32},
}
COLOUR = {
    'color_jitter': {'brightness': 0.2, 'contrast': 0.2, 'saturation': 0.2},
    'gamma': {'min_gamma': 0.8, 'max_gamma': 1.25},
    'clahe': {'clip_limit': 2.0, 'tile': 8},
    'autocontrast': {'cutoff': 1.0},
}
OP_PARAMS: dict[str, dict[str, float]] = {**GEOMETRIC, **COLOUR}
ROTATE_BOX_TO = ('bbox', 'poly')
KEYS = ('enabled', 'ops', 'rotate_box_to', 'fill')
# Parameters that also take a range [low, high] (of the factor itself).
RANGE_PARAMS = {('color_jitter', 'brightness'), ('color_jitter', 'contrast'), ('color_jitter', 'saturation')}


@dataclass(frozen=True)
class OpSpec:
    """One op: its name, the probability that it fires for a sample, and the parameters the config sets (the rest
    take the defaults in ``OP_PARAMS``); a range parameter is a [low, high] list."""

    name: str
    prob: float
    params: dict[str, float | list[float]] = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentationSpec:
    """A parsed `augmentation` mapping."""

    ops: tuple[OpSpec, ...]
    rotate_box_to: str = 'bbox'
    fill: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The mapping as it is written in YAML (what `resolved_config.yaml` records)."""
        return {'rotate_box_to': self.rotate_box_to, 'fill': self.fill,
                'ops': [{'name': op.name, 'prob': op.prob, **op.params} for op in self.ops]}


def parse_augmentation(spec: Any) -> tuple[AugmentationSpec | None, list[str]]:
    """The YAML mapping as an ``AugmentationSpec`` (None when empty, `enabled: false` or invalid), and the problems,
    each naming the op and the key."""
    if not spec:
        return None, []
    if not isinstance(spec, dict):
        return None, [f'must be a mapping with `ops` (and optionally `enabled`, `rotate_box_to`, `fill`), got {spec!r}']
    problems = [f'unknown key `{k}` (valid: {", ".join(KEYS)})' for k in spec if k not in KEYS]
    enabled = spec.get('enabled', True)
    if not isinstance(enabled, bool):
        problems.append(f'enabled: must be true or false, got {enabled!r}')
    rotate_box_to = spec.get('rotate_box_to', 'bbox')
    if rotate_box_to not in ROTATE_BOX_TO:
        problems.append(f'rotate_box_to: must be one of {ROTATE_BOX_TO}, got {rotate_box_to!r}')
    fill = spec.get('fill', 0)
    if not isinstance(fill, int) or isinstance(fill, bool) or not 0 <= fill <= 255:
        problems.append(f'fill: must be a grey level 0-255, got {fill!r}')
    ops = spec.get('ops') or []
    if not isinstance(ops, list):
        problems.append(f'ops: must be a list of {{name, prob, ...}} entries, got {ops!r}')
        ops = []
    parsed = [op for i, entry in enumerate(ops) if (op := _parse_op(i, entry, problems)) is not None]
    if problems or enabled is False:
        return None, problems
    return AugmentationSpec(tuple(parsed), rotate_box_to, fill), []


def _parse_op(i: int, entry: Any, problems: list[str]) -> OpSpec | None:
    name = entry.get('name') if isinstance(entry, dict) else None
    if name not in OP_PARAMS:
        problems.append(f'ops[{i}]: unknown op {name!r}; valid ops: {", ".join(OP_PARAMS)}')
        return None
    settings = {k: v for k, v in entry.items() if k not in ('name', 'params')}
    nested = entry.get('params', {})
    if not isinstance(nested, dict):
        problems.append(f'ops[{i}] ({name}).params: must be a mapping of parameters, got {nested!r}')
        nested = {}
    for key in settings.keys() & nested.keys():
        problems.append(f'ops[{i}] ({name}): `{key}` is set both beside `name` and in `params`; keep one')
    settings.update(nested)
    prob = settings.pop('prob', 1.0)
    if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not 0 <= prob <= 1:
        problems.append(f'ops[{i}] ({name}).prob: must be a number in [0, 1], got {prob!r}')
    valid = OP_PARAMS[name]
    for key, value in settings.items():
        if key not in valid:
            problems.append(f'ops[{i}] ({name}): unknown parameter `{key}`; valid: {", ".join(valid) or "none"}')
        elif (name, key) in RANGE_PARAMS and isinstance(value, list):
            if (len(value) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
                    or not 0 <= value[0] <= value[1]):
                problems.append(f'ops[{i}] ({name}).{key}: a range must be [low, high] with 0 <= low <= high, got '
                                f'{value!r}')
        elif not isinstance(value, (int, float)) or isinstance(value, bool):
            kind = 'a number or a range [low, high]' if (name, key) in RANGE_PARAMS else 'a number'
            problems.append(f'ops[{i}] ({name}).{key}: must be {kind}, got {value!r}')
    return OpSpec(name, float(prob) if isinstance(prob, (int, float)) else 0.0, settings)
