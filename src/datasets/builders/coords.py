"""Pixel coordinates (as stored) -> the coordinates the model reads and writes."""
from __future__ import annotations

COORD_FORMATS = ('norm1000', 'pixel')


def to_model_coords(coords: list[float], width: int, height: int, coord_format: str) -> list[int]:
    """``norm1000``: integers 0-1000 relative to the image size (Qwen3-VL's convention); ``pixel``: rounded pixels.

    >>> to_model_coords([0, 384, 1024, 768], 1024, 768, 'norm1000')
    [0, 500, 1000, 1000]
    """
    if coord_format == 'pixel':
        return [round(v) for v in coords]
    if coord_format != 'norm1000':
        raise ValueError(f'unknown coord_format {coord_format!r}; valid: {", ".join(COORD_FORMATS)}')
    scales = (width, height)
    return [min(1000, max(0, round(v * 1000 / scales[i % 2]))) for i, v in enumerate(coords)]
