"""`custom.video`: how video records are sampled (frames per second, frame count, pixels per frame).

    custom:
      video: {fps: 2.0, max_frames: 16, max_pixels: 147456}

Parsed once with the config into a ``VideoSampling``; ms-swift hands these settings to qwen-vl-utils through
environment variables (``environment``), set by ``src/swift_seams.py`` before the processor loads.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from .bounds import AT_LEAST_ONE, POSITIVE, pair_problem

# key -> (environment variable qwen-vl-utils reads, type, bound)
ENVIRONMENT = {'fps': ('FPS', float, POSITIVE), 'min_frames': ('FPS_MIN_FRAMES', int, AT_LEAST_ONE),
               'max_frames': ('FPS_MAX_FRAMES', int, AT_LEAST_ONE),
               'min_pixels': ('VIDEO_MIN_PIXELS', int, AT_LEAST_ONE),
               'max_pixels': ('VIDEO_MAX_PIXELS', int, AT_LEAST_ONE)}
PAIRS = (('min_frames', 'max_frames'), ('min_pixels', 'max_pixels'))


@dataclass(frozen=True)
class VideoSampling:
    """A parsed `custom.video` (unset fields keep qwen-vl-utils' defaults)."""

    fps: float | None = None
    min_frames: int | None = None
    max_frames: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None

    def to_dict(self) -> dict[str, Any] | None:
        """The mapping as it is written in YAML (None when every field keeps its default)."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None}
        return values or None

    def environment(self) -> dict[str, str]:
        """The environment variables through which ms-swift configures qwen-vl-utils' sampling."""
        return {ENVIRONMENT[f.name][0]: str(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None}


def parse_video(spec: Any) -> tuple[VideoSampling, list[tuple[tuple[str, ...], str]]]:
    """The YAML mapping as ``VideoSampling``, and the problems, each with the key it is about."""
    if not spec:
        return VideoSampling(), []
    if not isinstance(spec, dict):
        return VideoSampling(), [((), f'must be a mapping of {", ".join(ENVIRONMENT)}, got {spec!r}')]
    problems, values = [], {}
    for key, value in spec.items():
        if key not in ENVIRONMENT:
            problems.append(((str(key), ), f'unknown key; valid: {", ".join(ENVIRONMENT)}'))
            continue
        _, kind, bound = ENVIRONMENT[key]
        if (problem := bound.problem(value)) is not None:
            problems.append(((key, ), problem))
            continue
        values[key] = kind(value)
    for low, high in PAIRS:
        if (problem := pair_problem(low, values.get(low), high, values.get(high))) is not None:
            problems.append(((high, ), problem))
    return (VideoSampling() if problems else VideoSampling(**values)), problems
