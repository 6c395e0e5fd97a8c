"""An ``Augmenter`` transforms an image and its record's geometry together, as a parsed ``custom.augmentation``
(``src/config/augmentation.py``) says.

The geometric ops drawn for a sample compose into one affine map, so the image is resampled once and every
coordinate follows exactly the same map; colour ops run afterwards in their listed order. Each sample draws from
its own generator seeded by (run seed, epoch, record index), so a run is reproducible and epochs differ.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
from PIL import Image

from ...config.augmentation import AugmentationSpec, OpSpec
from .geometry import scaling, transform_object, warp_image
from .ops import COLOR_OPS, GEOMETRIC_OPS


@dataclass
class Augmenter:
    ops: list[OpSpec]
    rotate_box_to: str = 'bbox'
    fill: int = 0
    model_size: Callable[[int, int], tuple[int, int]] | None = None
    """(width, height) -> the size the template will resize an image to (``pixels.model_size_of``). When the
    geometric ops resample the image anyway, they resample it to that size, so the template does not resample it
    a second time (one interpolation instead of two; the saving is in docs/performance.md); the boxes follow
    the same map."""

    def plan(self, size: tuple[int, int], rng: np.random.Generator) -> tuple[np.ndarray, tuple[int, int], list]:
        """Draw which ops fire: (composed geometric map, output size, colour ops to run in order)."""
        matrix = np.eye(3)
        colour = []
        for op in self.ops:
            if rng.random() >= op.prob:
                continue
            if op.name in GEOMETRIC_OPS:
                step, size = GEOMETRIC_OPS[op.name](size, rng, **op.arguments())
                matrix = step @ matrix
            else:
                colour.append(op)
        return matrix, size, colour

    def move(self, record: dict[str, Any], rng: np.random.Generator) -> tuple[dict[str, Any], int, np.ndarray, list]:
        """The record as this draw moves it, without touching pixels: (record with new width/height/objects,
        objects dropped as cropped out, the map the image follows, colour ops to run). ``rng`` is left where the
        colour ops continue drawing, so ``__call__`` = ``move`` + resampling + colour ops, and the length check
        (``src/datasets/record_check.py``) sees the same record as training without decoding the image."""
        size = (record['width'], record['height'])
        matrix, new_size, colour = self.plan(size, rng)
        if not np.allclose(matrix, np.eye(3)) or new_size != size:
            target = self.model_size(*new_size) if self.model_size is not None else new_size
            if target != new_size:
                matrix, new_size = scaling(target[0] / new_size[0], target[1] / new_size[1]) @ matrix, target
        objects = []
        for obj in record.get('objects', []):
            moved = transform_object(obj, matrix, new_size[0], new_size[1], self.rotate_box_to)
            if moved is not None:
                objects.append(moved)
        dropped = len(record.get('objects', [])) - len(objects)
        return {**record, 'width': new_size[0], 'height': new_size[1], 'objects': objects}, dropped, matrix, colour

    def __call__(self, image: Image.Image, record: dict[str, Any],
                 rng: np.random.Generator) -> tuple[Image.Image, dict[str, Any], int]:
        """(new image, record with new width/height/objects, number of objects dropped as cropped out); the
        record's width and height are the image's."""
        moved, dropped, matrix, colour = self.move({**record, 'width': image.width, 'height': image.height}, rng)
        size = (moved['width'], moved['height'])
        if not np.allclose(matrix, np.eye(3)) or size != image.size:
            image = warp_image(image.convert('RGB'), matrix, size, self.fill)
        for op in colour:
            image = COLOR_OPS[op.name](image.convert('RGB'), rng, **op.arguments())
        if type(image) is Image.Image:
            image.__class__ = AugmentedImage
        return image, moved, dropped


class AugmentedImage(Image.Image):
    """The image an ``Augmenter`` returns. Nothing writes to it afterwards, so a deep copy of it is the image itself:
    ms-swift's ``Template.encode`` deep-copies its inputs twice, a pixel copy per sample that is wasted
    here (docs/performance.md); ``qwen_vl_utils.fetch_image`` then converts it into a new image anyway."""

    def __deepcopy__(self, memo: dict) -> 'AugmentedImage':
        return self


def augmenter_for(spec: AugmentationSpec | None) -> Augmenter | None:
    """The augmenter of a parsed `augmentation` config (None: no augmentation)."""
    return None if spec is None else Augmenter(list(spec.ops), spec.rotate_box_to, spec.fill)


PROMPT_STREAM = 1
"""``sample_rng`` stream of the prompt-variant draw, independent of the augmentation draws (stream 0)."""


def sample_rng(seed: int, epoch: int, index: int, stream: int = 0) -> np.random.Generator:
    """The generator of one sample: the same (seed, epoch, index) always draws the same augmentation.

    ``stream`` separates independent draws of the same sample (augmentation, prompt variant).
    """
    return np.random.default_rng([seed, epoch, index] + ([stream] if stream else []))
