"""Pixel coordinates (as stored) <-> the coordinates the model reads and writes."""
from __future__ import annotations

COORD_FORMATS = ('norm1000', 'pixel')


def _check(coord_format: str) -> None:
    if coord_format not in COORD_FORMATS:
        raise ValueError(f'unknown coord_format {coord_format!r}; valid: {", ".join(COORD_FORMATS)}')


def to_model_coords(coords: list[float], width: int, height: int, coord_format: str) -> list[int]:
    """``norm1000``: integers 0-1000 relative to the image size (Qwen3-VL's convention); ``pixel``: rounded pixels.

    >>> to_model_coords([0, 384, 1024, 768], 1024, 768, 'norm1000')
    [0, 500, 1000, 1000]
    """
    _check(coord_format)
    if coord_format == 'pixel':
        return [round(v) for v in coords]
    scales = (width, height)
    return [min(1000, max(0, round(v * 1000 / scales[i % 2]))) for i, v in enumerate(coords)]


def from_model_coords(coords: list[float], width: int, height: int, coord_format: str) -> list[float]:
    """The inverse of ``to_model_coords``: pixels of the image, clipped to it (a model may write any number).

    >>> from_model_coords([0, 500, 1000, 1200], 1024, 768, 'norm1000')
    [0.0, 384.0, 1024.0, 768.0]
    """
    _check(coord_format)
    scales = (width, height)
    pixels = coords if coord_format == 'pixel' else [v * scales[i % 2] / 1000 for i, v in enumerate(coords)]
    return [min(float(scales[i % 2]), max(0.0, float(v))) for i, v in enumerate(pixels)]
