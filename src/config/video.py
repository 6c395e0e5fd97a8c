"""`custom.video`: how video records are sampled (frames per second, frame count, pixels per frame).

    custom:
      video: {fps: 2.0, max_frames: 16, max_pixels: 147456}

Parsed once with the config into a ``VideoSampling``; ms-swift hands these settings to qwen-vl-utils through
environment variables (``environment``), set by ``src/swift_seams.py`` before the processor loads.
"""
from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

# key -> (environment variable qwen-vl-utils reads, type)
ENVIRONMENT = {'fps': ('FPS', float), 'min_frames': ('FPS_MIN_FRAMES', int), 'max_frames': ('FPS_MAX_FRAMES', int),
               'min_pixels': ('VIDEO_MIN_PIXELS', int), 'max_pixels': ('VIDEO_MAX_PIXELS', int)}


@dataclass(frozen=True)
class VideoSampling:
    """A parsed `custom.video` (unset fields keep qwen-vl-utils' defaults)."""

    fps: float | None = None
    min_frames: int | None = None
    max_frames: int | None = None
    min_pixels: int | None = None
    max_pixels: int | None = None

    def environment(self) -> dict[str, str]:
        """The environment variables through which ms-swift configures qwen-vl-utils' sampling."""
        return {ENVIRONMENT[f.name][0]: str(getattr(self, f.name)) for f in fields(self)
                if getattr(self, f.name) is not None}


def parse_video(spec: Any) -> tuple[VideoSampling, list[str]]:
    """The YAML mapping as ``VideoSampling``, and the problems, each naming the key."""
    if not spec:
        return VideoSampling(), []
    if not isinstance(spec, dict):
        return VideoSampling(), [f'must be a mapping of {", ".join(ENVIRONMENT)}, got {spec!r}']
    problems, values = [], {}
    for key, value in spec.items():
        if key not in ENVIRONMENT:
            problems.append(f'`{key}`: unknown key; valid: {", ".join(ENVIRONMENT)}')
            continue
        kind = ENVIRONMENT[key][1]
        valid_type = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
        if not valid_type or value <= 0:
            problems.append(f'`{key}`: expected a positive {kind.__name__}, got {value!r}')
            continue
        values[key] = kind(value)
    frames = values.get('min_frames'), values.get('max_frames')
    if not problems and None not in frames and frames[0] > frames[1]:
        problems.append(f'`min_frames` ({values["min_frames"]}) is above `max_frames` ({values["max_frames"]})')
    return (VideoSampling() if problems else VideoSampling(**values)), problems
