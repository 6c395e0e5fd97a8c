"""Pixel coordinates (as stored in a record) <-> the coordinates a model reads and writes.

Each model family was trained on one convention, and ms-swift's template for it renders grounding boxes that way:

- ``norm1000`` (Qwen3-VL, Qwen2-VL): integers 0-1000 relative to the image;
- ``model_pixel`` (Qwen2.5-VL): absolute pixels of the image the model receives, after ms-swift scales it to
  `template.max_pixels` and qwen-vl-utils' ``smart_resize`` rounds its sides to multiples of 28 (a 1000x500 image
  with `max_pixels: 131072` arrives as 504x252, so a box at [100, 100, 300, 300] is written [50, 50, 151, 151]);
- ``pixel``: the record's own pixels, unscaled (for a model that was trained that way).

``Coords`` carries the convention and, for ``model_pixel``, the run's `max_pixels`; the same object converts the
answers a model writes back to the record's pixels (evaluation, drawing, rewards).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

COORD_FORMATS = ('norm1000', 'model_pixel', 'pixel')
PATCH_FACTOR = 28  # Qwen2.5-VL: 14-pixel patches, merged 2 x 2 (qwen-vl-utils' default `image_patch_size`)


def model_image_size(width: int, height: int, max_pixels: int | None,
                     factor: int = PATCH_FACTOR) -> tuple[int, int]:
    """(width, height) of the image a Qwen-VL template hands the model (``factor``: patch size x merge size, 28 for
    Qwen2.5-VL, 32 for Qwen3-VL).

    First ms-swift's ``rescale_image`` (``swift/template/vision_utils.py``) when the image is larger than
    `template.max_pixels`, then qwen-vl-utils' ``fetch_image`` resize within its default token range.
    """
    from qwen_vl_utils.vision_process import IMAGE_MAX_TOKEN_NUM, IMAGE_MIN_TOKEN_NUM, smart_resize

    if max_pixels is not None and max_pixels > 0 and width * height > max_pixels:
        ratio = width / height
        scaled_height = math.sqrt(max_pixels / ratio)
        width, height = int(scaled_height * ratio), int(scaled_height)
    resized_height, resized_width = smart_resize(height, width, factor=factor,
                                                 min_pixels=IMAGE_MIN_TOKEN_NUM * factor**2,
                                                 max_pixels=IMAGE_MAX_TOKEN_NUM * factor**2)
    return resized_width, resized_height


@dataclass(frozen=True)
class Coords:
    """A coordinate convention (``COORD_FORMATS``) and the `template.max_pixels` it depends on (``model_pixel``)."""

    format: str = 'norm1000'
    max_pixels: int | None = None

    def __post_init__(self):
        if self.format not in COORD_FORMATS:
            raise ValueError(f'unknown coord_format {self.format!r}; valid: {", ".join(COORD_FORMATS)}')

    def extent(self, width: int, height: int) -> tuple[int, int]:
        """The width and height of the image in model units (1000 x 1000 for ``norm1000``)."""
        if self.format == 'pixel':
            return width, height
        if self.format == 'norm1000':
            return 1000, 1000
        return model_image_size(width, height, self.max_pixels)

    def to_model(self, coords: list[float], width: int, height: int) -> list[int]:
        """Record pixels -> the model's integers, computed as ms-swift's templates do (``norm1000`` clipped to 0-1000).

        >>> Coords('norm1000').to_model([0, 384, 1024, 768], 1024, 768)
        [0, 500, 1000, 1000]
        >>> Coords('model_pixel', max_pixels=131072).to_model([100, 100, 300, 300], 1000, 500)
        [50, 50, 151, 151]
        """
        sizes, extents = (width, height), self.extent(width, height)
        values = [int(round(v / sizes[i % 2] * extents[i % 2])) for i, v in enumerate(coords)]
        return [min(1000, max(0, v)) for v in values] if self.format == 'norm1000' else values

    def from_model(self, coords: list[float], width: int, height: int) -> list[float]:
        """The inverse: record pixels, clipped to the image (a model may write any number).

        >>> Coords('norm1000').from_model([0, 500, 1000, 1200], 1024, 768)
        [0.0, 384.0, 1024.0, 768.0]
        """
        sizes, extents = (width, height), self.extent(width, height)
        return [min(float(sizes[i % 2]), max(0.0, float(v) / extents[i % 2] * sizes[i % 2]))
                for i, v in enumerate(coords)]
