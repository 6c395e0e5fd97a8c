"""Turn a geometry / summary record into user + assistant messages for one training mode.

``dense``: the assistant lists every object with its geometry as JSON, in the model's coordinate convention.
``summary``: the assistant answers with the record's ``summary`` text verbatim (the two-line header + JSON, or the
single line ``无关图片`` for an irrelevant image). Chat records with ready ``messages`` never come here.
Images always enter as ``{"type": "image", "image": value}`` items; the template inserts the vision tokens.
"""
from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

from PIL import ExifTags, Image

from ..contract import image_path
from .coords import Coords

DEFAULT_PROMPTS = {
    'dense': ('List every object in the image as JSON: '
              '[{"desc": ..., "bbox_2d" | "poly" | "line": [...]}].'),
    'summary': 'Summarise the image: a two-line header, then the JSON object counts; answer 无关图片 if the image is '
               'irrelevant.',
}


@dataclass
class BuildSettings:
    """What a builder needs from the config (``custom.mode``, the coordinate convention, prompts)."""

    mode: str = 'dense'
    coords: Coords = Coords()
    prompts: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PROMPTS))
    dataset_prompts: dict[str, dict[str, str]] = field(default_factory=dict)
    summary_variants: tuple[str, ...] = ()
    """Summary prompts a sample draws from (``custom.summary_prompt_variants``); empty: ``prompts['summary']``."""

    @classmethod
    def from_config(cls, cfg: Any) -> 'BuildSettings':
        """The settings a validated config (``ProjectConfig``) asks for."""
        custom = cfg.custom
        return cls(custom.mode, coords_of(cfg), {**DEFAULT_PROMPTS, **(custom.prompts or {})},
                   custom.dataset_prompts or {}, tuple(custom.summary_prompt_variants or ()))

    def for_sample(self, rng: Any) -> 'BuildSettings':
        """These settings with the summary prompt drawn from ``summary_variants`` by ``rng`` (when there are any)."""
        if self.mode != 'summary' or not self.summary_variants:
            return self
        variant = self.summary_variants[int(rng.integers(len(self.summary_variants)))]
        return replace(self, prompts={**self.prompts, 'summary': variant})

    def prompt(self, record: dict[str, Any]) -> str:
        """The user prompt of this mode, overridden per dataset where the config says so.

        A record's fusion source (set by the offline mixture builder) is looked up before its `dataset` field.
        """
        for name in (record.get('_fusion_source'), record.get('dataset')):
            if name and self.mode in self.dataset_prompts.get(name, {}):
                return self.dataset_prompts[name][self.mode]
        return self.prompts.get(self.mode, DEFAULT_PROMPTS[self.mode])


def image_input(entry: Any, base_dir: Path) -> str:
    """What the template gets for an ``images`` entry: an absolute path, a URL, or a PNG data URL for inline bytes
    (``ValueError`` when those bytes are not an image)."""
    if isinstance(entry, dict):
        try:
            with Image.open(io.BytesIO(base64.b64decode(entry['bytes'], validate=True))) as image:
                buffer = io.BytesIO()
                image.save(buffer, format='PNG')
        except (binascii.Error, OSError, ValueError) as exc:
            raise ValueError(f'the inline {{"bytes": ...}} do not open as an image ({type(exc).__name__}: '
                             f'{exc})') from None
        return 'data:image/png;base64,' + base64.b64encode(buffer.getvalue()).decode()
    path = image_path(entry, base_dir)
    return str(path) if path is not None else entry


def first_image(inputs: dict[str, Any]) -> str | None:
    """The first image of template inputs (an ``images`` entry or an image content item), or None."""
    if inputs.get('images'):
        return inputs['images'][0]
    for message in inputs['messages']:
        for item in message['content'] if isinstance(message['content'], list) else []:
            if item['type'] == 'image':
                return item['image']
    return None


def image_source(value: str) -> str | io.BytesIO:
    """What ``Image.open`` reads for an ``image_input`` value: the path, or the decoded bytes of a data URL."""
    return io.BytesIO(base64.b64decode(value.split(',', 1)[1])) if value.startswith('data:') else value


def header_size(value: str) -> tuple[int, int]:
    """(width, height) of an image input (a path or a data URL) from its header, without decoding its pixels."""
    with Image.open(image_source(value)) as image:
        return image.size


# PIL modes whose values do not fit 8 bits: `convert('RGB')` clips every value above 255 (a 16-bit PNG turns white).
WIDE_MODES = {'I': '32-bit integer', 'F': '32-bit float', 'I;16': '16-bit', 'I;16L': '16-bit', 'I;16B': '16-bit',
              'I;16N': '16-bit'}


def image_header_problem(value: str, width: int | None = None, height: int | None = None) -> str | None:
    """What the image's header says is wrong, without decoding its pixels: it does not open as an image, its pixels
    do not convert faithfully to 8-bit RGB (16-bit or float samples), or, given ``width`` and ``height``, its size
    differs from the record's (the pixels the model sees are the stored image's: neither ms-swift nor the processor
    applies EXIF orientation, so the record's coordinates would be normalised against the wrong size)."""
    try:
        with Image.open(image_source(value)) as image:
            actual, mode = image.size, image.mode
            orientation = _orientation(image) if width is not None else 1
    except Exception as exc:  # noqa: BLE001 - any decoder failure is the record's problem
        return f'{value:.80} does not open as an image ({type(exc).__name__}: {exc})'
    if mode in WIDE_MODES:
        return (f'{value:.80} has {WIDE_MODES[mode]} samples (PIL mode {mode}); converting them to the 8-bit RGB the '
                'model reads clips every value above 255. Rescale it to 8 bits first (e.g. 16-bit: value / 257; '
                'float: value * 255 for 0-1 data) and save it as an 8-bit PNG or JPEG')
    if width is None or actual == (width, height):
        return None
    hint = ''
    if orientation in (5, 6, 7, 8) and actual == (height, width):
        hint = (f'; the file carries EXIF orientation {orientation}, so viewers show it rotated, but training sees the '
                'stored pixels: save the image upright (PIL.ImageOps.exif_transpose) or give the stored size')
    return (f'`width` x `height` {width}x{height} disagree with the image file, which is {actual[0]}x{actual[1]}; '
            f'coordinates are pixels of the image as stored{hint}')


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation of an opened image, read from its header: PIL's ``getexif`` on a PNG without an EXIF
    chunk before its pixels decodes the whole image to look for one after them."""
    if image.format == 'PNG':
        exif = Image.Exif()
        if image.info.get('exif'):
            exif.load(image.info['exif'])
        return exif.get(ExifTags.Base.Orientation, 1)
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def load_image(value: str) -> Image.Image:
    """Decode an ``image_input`` value (path or data URL; remote URLs are refused by the record checks)."""
    with Image.open(image_source(value)) as image:
        return image.convert('RGB')


def coords_of(cfg: Any) -> Coords:
    """The coordinate convention of a validated config: its (or its base model's) format and `template.max_pixels`."""
    return Coords(cfg.coord_format, cfg.template.get('max_pixels'))


def render_objects(objects: list[dict[str, Any]], width: int, height: int, coords: Coords) -> str:
    """The dense-caption answer: objects in order, each ``{"desc", <geometry>}`` in the model's coordinates."""
    rendered = []
    for obj in objects:
        kind = next(k for k in ('bbox_2d', 'poly', 'line') if k in obj)
        rendered.append({'desc': obj['desc'], kind: coords.to_model(obj[kind], width, height)})
    return json.dumps(rendered, ensure_ascii=False)


def build_dense(record: dict[str, Any], image: Any, settings: BuildSettings) -> dict[str, Any]:
    answer = render_objects(record.get('objects', []), record['width'], record['height'], settings.coords)
    return _messages(image, settings.prompt(record), answer)


def build_summary(record: dict[str, Any], image: Any, settings: BuildSettings) -> dict[str, Any]:
    if not isinstance(record.get('summary'), str):
        raise ValueError('summary mode needs a `summary` text in every record')
    return _messages(image, settings.prompt(record), record['summary'])


def _messages(image: Any, prompt: str, answer: str) -> dict[str, Any]:
    return {
        'messages': [
            {'role': 'user', 'content': [{'type': 'image', 'image': image}, {'type': 'text', 'text': prompt}]},
            {'role': 'assistant', 'content': answer},
        ]
    }


BUILDERS: dict[str, Callable[[dict[str, Any], Any, BuildSettings], dict[str, Any]]] = {
    'dense': build_dense,
    'summary': build_summary,
}
