"""Augmentation ops. Geometric ops return an affine map and an output size; colour ops return a new image.

Each op is a plain function whose keyword parameters are its YAML parameters; ``GEOMETRIC_OPS`` and
``COLOR_OPS`` map the YAML names to them. Their defaults and bounds are written once, in ``src/config/augmentation.py``
(``OP_PARAMS``), and every call passes all of them (``OpSpec.arguments``).
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np
from PIL import Image, ImageOps

from .geometry import Matrix, rotation, scaling, translation

Size = tuple[int, int]
GeometricOp = Callable[..., tuple[Matrix, Size]]
ColorOp = Callable[..., Image.Image]


def hflip(size: Size, rng: np.random.Generator) -> tuple[Matrix, Size]:
    w, _ = size
    return translation(w, 0) @ scaling(-1, 1), size


def vflip(size: Size, rng: np.random.Generator) -> tuple[Matrix, Size]:
    _, h = size
    return translation(0, h) @ scaling(1, -1), size


def rotate(size: Size, rng: np.random.Generator, max_deg: float) -> tuple[Matrix, Size]:
    """Rotate about the centre by an angle in [-max_deg, max_deg]; the canvas keeps its size (corners fill)."""
    w, h = size
    return rotation(rng.uniform(-max_deg, max_deg), w / 2, h / 2), size


def scale(size: Size, rng: np.random.Generator, min_scale: float, max_scale: float) -> tuple[Matrix, Size]:
    """Zoom about the centre by a factor in [min_scale, max_scale]; the canvas keeps its size."""
    w, h = size
    s = rng.uniform(min_scale, max_scale)
    return translation(w / 2, h / 2) @ scaling(s, s) @ translation(-w / 2, -h / 2), size


def crop(size: Size, rng: np.random.Generator, min_scale: float, max_scale: float) -> tuple[Matrix, Size]:
    """Keep a random window whose sides are a fraction in [min_scale, max_scale] of the image's."""
    w, h = size
    s = rng.uniform(min_scale, max_scale)
    cw, ch = max(1, round(w * s)), max(1, round(h * s))
    x0, y0 = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
    return translation(-x0, -y0), (cw, ch)


def resize_by_scale(size: Size, rng: np.random.Generator, min_scale: float,
                    max_scale: float) -> tuple[Matrix, Size]:
    """Resize the whole image by a factor in [min_scale, max_scale]."""
    w, h = size
    s = rng.uniform(min_scale, max_scale)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    return scaling(nw / w, nh / h), (nw, nh)


def pad_to_multiple(size: Size, rng: np.random.Generator, multiple: int) -> tuple[Matrix, Size]:
    """Pad right and bottom so both sides are multiples of ``multiple``; coordinates do not move."""
    w, h = size
    multiple = int(multiple)
    return np.eye(3), (math.ceil(w / multiple) * multiple, math.ceil(h / multiple) * multiple)


def color_jitter(image: Image.Image, rng: np.random.Generator, brightness: float | list[float],
                 contrast: float | list[float], saturation: float | list[float]) -> Image.Image:
    """Scale brightness, contrast and saturation by factors drawn from [1 - x, 1 + x] for a number x, or from
    [low, high] for a pair (the playbook's `brightness: [0.85, 1.15]`).

    PIL's ``ImageEnhance`` formulas (blend with black, with the image's mean grey, with its greyscale version) in
    OpenCV's saturating uint8 arithmetic, which is faster (docs/performance.md); OpenCV rounds where PIL
    truncates, so a pixel differs from ``ImageEnhance``'s by at most one grey level per step.
    """
    import cv2

    pixels = np.asarray(image.convert('RGB'))
    for name, amount in (('brightness', brightness), ('contrast', contrast), ('saturation', saturation)):
        low, high = amount if isinstance(amount, (list, tuple)) else (max(0.0, 1 - amount), 1 + amount)
        if (low, high) == (1, 1):
            continue
        factor = rng.uniform(low, high)
        if name == 'brightness':
            pixels = cv2.addWeighted(pixels, factor, pixels, 0.0, 0.0)
        elif name == 'contrast':
            mean = int(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY).mean() + 0.5)
            pixels = cv2.addWeighted(pixels, factor, pixels, 0.0, mean * (1 - factor))
        else:
            grey = cv2.cvtColor(cv2.cvtColor(pixels, cv2.COLOR_RGB2GRAY), cv2.COLOR_GRAY2RGB)
            pixels = cv2.addWeighted(pixels, factor, grey, 1 - factor, 0.0)
    return Image.fromarray(pixels)


def gamma(image: Image.Image, rng: np.random.Generator, min_gamma: float,
          max_gamma: float) -> Image.Image:
    g = rng.uniform(min_gamma, max_gamma)
    lut = [min(255, round(255 * (i / 255)**g)) for i in range(256)]
    return image.point(lut * len(image.getbands()))


def clahe(image: Image.Image, rng: np.random.Generator, clip_limit: float, tile: int) -> Image.Image:
    """Contrast-limited adaptive histogram equalisation on the luminance channel (OpenCV)."""
    import cv2

    lab = cv2.cvtColor(np.asarray(image.convert('RGB')), cv2.COLOR_RGB2LAB)
    lab[..., 0] = cv2.createCLAHE(clipLimit=clip_limit, tileGridSize=(int(tile), int(tile))).apply(lab[..., 0])
    return Image.fromarray(cv2.cvtColor(lab, cv2.COLOR_LAB2RGB))


def autocontrast(image: Image.Image, rng: np.random.Generator, cutoff: float) -> Image.Image:
    return ImageOps.autocontrast(image.convert('RGB'), cutoff=cutoff)


GEOMETRIC_OPS: dict[str, GeometricOp] = {
    'hflip': hflip,
    'vflip': vflip,
    'rotate': rotate,
    'scale': scale,
    'crop': crop,
    'resize_by_scale': resize_by_scale,
    'pad_to_multiple': pad_to_multiple,
}
COLOR_OPS: dict[str, ColorOp] = {
    'color_jitter': color_jitter,
    'gamma': gamma,
    'clahe': clahe,
    'autocontrast': autocontrast,
}
