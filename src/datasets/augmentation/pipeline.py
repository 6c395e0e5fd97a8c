"""``custom.augmentation`` -> an ``Augmenter`` that transforms an image and its record's geometry together.

    custom:
      augmentation:
        rotate_box_to: bbox        # or poly: a rotated box becomes the polygon of its corners
        ops:
          - {name: hflip, prob: 0.5}
          - {name: rotate, prob: 0.3, max_deg: 10}
          - {name: crop, prob: 0.3, min_scale: 0.7}
          - {name: color_jitter, prob: 0.5, brightness: 0.2}

The geometric ops drawn for a sample compose into one affine map, so the image is resampled once and every
coordinate follows exactly the same map; colour ops run afterwards in their listed order. Each sample draws from
its own generator seeded by (run seed, epoch, record index), so a run is reproducible and epochs differ.
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from .geometry import transform_object, warp_image
from .ops import COLOR_OPS, GEOMETRIC_OPS

ALL_OPS = {**GEOMETRIC_OPS, **COLOR_OPS}
ROTATE_BOX_TO = ('bbox', 'poly')


@dataclass
class OpSpec:
    name: str
    prob: float
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class Augmenter:
    ops: list[OpSpec]
    rotate_box_to: str = 'bbox'
    fill: int = 0

    def plan(self, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int], list]:
        """Draw which ops fire: (composed geometric map, output size, colour ops to run in order)."""
        matrix = np.eye(3)
        colour = []
        for op in self.ops:
            if rng.random() >= op.prob:
                continue
            if op.name in GEOMETRIC_OPS:
                step, size = GEOMETRIC_OPS[op.name](size, rng, **op.params)
                matrix = step @ matrix
            else:
                colour.append(op)
        return matrix, size, colour

    def __call__(self, image: Image.Image, record: dict[str, Any],
                 rng: np.random.Generator) -> tuple[Image.Image, dict[str, Any], int]:
        """(new image, record with new width/height/objects, number of objects dropped as cropped out)."""
        matrix, size, colour = self.plan(image.size, rng)
        if not np.allclose(matrix, np.eye(3)) or size != image.size:
            image = warp_image(image.convert('RGB'), matrix, size, self.fill)
        for op in colour:
            image = COLOR_OPS[op.name](image.convert('RGB'), rng, **op.params)
        objects = []
        for obj in record.get('objects', []):
            moved = transform_object(obj, matrix, size[0], size[1], self.rotate_box_to)
            if moved is not None:
                objects.append(moved)
        dropped = len(record.get('objects', [])) - len(objects)
        return image, {**record, 'width': size[0], 'height': size[1], 'objects': objects}, dropped


def _params(name: str) -> dict[str, inspect.Parameter]:
    return {k: p for k, p in inspect.signature(ALL_OPS[name]).parameters.items() if k not in ('size', 'image', 'rng')}


def parse_augmentation(spec: Any) -> tuple[Augmenter | None, list[str]]:
    """Build the augmenter from the YAML mapping; returns (augmenter or None, problems naming the op and key)."""
    if not spec:
        return None, []
    if not isinstance(spec, dict):
        return None, ['must be a mapping with `ops` (and optionally `rotate_box_to`, `fill`)']
    problems = [f'unknown key `{k}` (valid: ops, rotate_box_to, fill)' for k in spec
                if k not in ('ops', 'rotate_box_to', 'fill')]
    rotate_box_to = spec.get('rotate_box_to', 'bbox')
    if rotate_box_to not in ROTATE_BOX_TO:
        problems.append(f'rotate_box_to: must be one of {ROTATE_BOX_TO}, got {rotate_box_to!r}')
    ops = []
    for i, entry in enumerate(spec.get('ops') or []):
        name = entry.get('name') if isinstance(entry, dict) else None
        if name not in ALL_OPS:
            problems.append(f'ops[{i}]: unknown op {name!r}; valid ops: {", ".join(ALL_OPS)}')
            continue
        prob = entry.get('prob', 1.0)
        if not isinstance(prob, (int, float)) or not 0 <= prob <= 1:
            problems.append(f'ops[{i}] ({name}).prob: must be a number in [0, 1], got {prob!r}')
        valid = _params(name)
        params = {k: v for k, v in entry.items() if k not in ('name', 'prob')}
        for key, value in params.items():
            if key not in valid:
                problems.append(f'ops[{i}] ({name}): unknown parameter `{key}`; valid: {", ".join(valid) or "none"}')
            elif not isinstance(value, (int, float)) or isinstance(value, bool):
                problems.append(f'ops[{i}] ({name}).{key}: must be a number, got {value!r}')
        ops.append(OpSpec(name, float(prob) if isinstance(prob, (int, float)) else 0.0, params))
    if problems:
        return None, problems
    return Augmenter(ops, rotate_box_to, int(spec.get('fill', 0))), []


PROMPT_STREAM = 1
"""``sample_rng`` stream of the prompt-variant draw, independent of the augmentation draws (stream 0)."""


def sample_rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of one sample: the same (seed, epoch, index) always draws the same augmentation.

    ``stream`` separates independent draws of the same sample (augmentation, prompt variant).
    """
    return np.random.default_rng([seed, epoch, index] + ([stream] if stream else []))
