"""Pictures of geometry: objects drawn on their image, and ground truth beside prediction.

Small images are drawn enlarged (the short side to at least ``MIN_SIDE`` pixels) so that labels stay readable.
"""
from __future__ import annotations

import importlib.util
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from PIL import Image, ImageDraw, ImageFont

from .parse import Obj

GT_COLOR = (0, 170, 60)
PRED_COLOR = (220, 40, 40)
MIN_SIDE = 384
MAX_SCALE = 8.0
FONT_SIZE = 14


def hex_color(color: tuple[int, int, int]) -> str:
    """>>> hex_color((0, 170, 60))
    '#00aa3c'
    """
    return '#%02x%02x%02x' % color


def default_font_file() -> Path | None:
    """DejaVu Sans, which ships inside matplotlib (a dependency): Latin, Greek and Cyrillic, where PIL's own default
    font lacks even `é`; found without importing matplotlib. None when it is not there."""
    spec = importlib.util.find_spec('matplotlib')
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / 'mpl-data' / 'fonts' / 'ttf' / 'DejaVuSans.ttf'
    return path if path.is_file() else None


class FontError(ValueError):
    """``--font`` names a file that is not a font PIL can open."""


@dataclass(frozen=True)
class LabelFont:
    """The font labels and captions are drawn in: ``--font`` when given, else ``default_font_file``, else PIL's."""
    path: Path | None = None

    @classmethod
    def choose(cls, path: str | Path | None) -> 'LabelFont':
        """``--font PATH`` checked to open as a TrueType / OpenType font (``FontError`` naming it), else the
        default."""
        if path is None:
            return cls(default_font_file())
        try:
            ImageFont.truetype(str(path), FONT_SIZE)
        except OSError as exc:
            raise FontError(f'--font {path}: not a TrueType / OpenType font file PIL can open ({exc})') from None
        return cls(Path(path))

    def font(self) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
        return ImageFont.truetype(str(self.path), FONT_SIZE) if self.path else ImageFont.load_default(size=FONT_SIZE)

    def missing(self, texts: Iterable[str]) -> list[str]:
        """The characters of ``texts`` this font has no glyph for (drawn as empty boxes), in order of appearance."""
        if self.path is None:
            return []
        from fontTools.ttLib import TTFont

        with TTFont(str(self.path), fontNumber=0, lazy=True) as font:
            covered = set(font.getBestCmap() or {})
        seen: dict[str, None] = {}
        for text in texts:
            for char in text:
                if not char.isspace() and ord(char) not in covered:
                    seen.setdefault(char)
        return list(seen)


def missing_glyphs_warning(font: LabelFont, texts: Iterable[str]) -> str | None:
    """One line when ``texts`` hold characters ``font`` draws as empty boxes (Chinese labels in DejaVu Sans)."""
    missing = font.missing(texts)
    if not missing:
        return None
    shown = ' '.join(missing[:8]) + (' ...' if len(missing) > 8 else '')
    return (f'warning: the pictures hold {len(missing)} character(s) the font {font.path.name} has no glyph for '
            f'({shown}); they are drawn as boxes. Pass --font with a .ttf / .otf that has them (for Chinese, '
            'Japanese or Korean: Noto Sans CJK)')


def draw_objects(image: Image.Image, objects: Iterable[Obj], color: tuple[int, int, int],
                 font: LabelFont | None = None) -> Image.Image:
    """A copy of ``image`` (enlarged if small) with each object's geometry and ``desc`` drawn in ``color``.

    Entries without geometry (unreadable predictions) are not drawn.
    """
    scale = min(MAX_SCALE, max(1.0, MIN_SIDE / min(image.size)))
    canvas = image.convert('RGB').resize((round(image.width * scale), round(image.height * scale)))
    draw = ImageDraw.Draw(canvas)
    face = (font or LabelFont.choose(None)).font()
    for obj in objects:
        if obj.kind is None:
            continue
        points = [(x * scale, y * scale) for x, y in zip(obj.coords[0::2], obj.coords[1::2])]
        if obj.kind == 'bbox_2d':
            (x1, y1), (x2, y2) = points
            draw.rectangle((x1, y1, max(x1, x2), max(y1, y2)), outline=color, width=2)
        elif obj.kind == 'poly':
            draw.line(points + points[:1], fill=color, width=2)
        else:
            draw.line(points, fill=color, width=3)
        anchor = min(points, key=lambda p: (p[1], p[0]))
        box = draw.textbbox(anchor, obj.desc, font=face)
        draw.rectangle(box, fill=color)
        draw.text(anchor, obj.desc, fill=(255, 255, 255), font=face)
    return canvas


def _caption(lines: list[str], width: int, font: LabelFont) -> Image.Image:
    face = font.font()
    chars = max(20, width // (FONT_SIZE // 2 + 1))
    wrapped = [piece for line in lines for piece in (textwrap.wrap(line, chars) or [''])]
    panel = Image.new('RGB', (width, 8 + (FONT_SIZE + 4) * len(wrapped)), 'white')
    draw = ImageDraw.Draw(panel)
    for i, line in enumerate(wrapped):
        draw.text((6, 4 + (FONT_SIZE + 4) * i), line, fill=(20, 20, 20), font=face)
    return panel


def side_by_side(panels: list[tuple[str, Image.Image, list[str]]], font: LabelFont | None = None) -> Image.Image:
    """Panels left to right, each a title, a picture and caption lines below it."""
    font = font or LabelFont.choose(None)
    columns = []
    for title, picture, lines in panels:
        columns.append([_caption([title], picture.width, font), picture, _caption(lines, picture.width, font)])
    width = sum(column[1].width for column in columns) + 8 * (len(columns) - 1)
    height = max(sum(part.height for part in column) for column in columns)
    sheet = Image.new('RGB', (width, height), 'white')
    x = 0
    for column in columns:
        y = 0
        for part in column:
            sheet.paste(part, (x, y))
            y += part.height
        x += column[1].width + 8
    return sheet
