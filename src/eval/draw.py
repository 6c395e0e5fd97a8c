"""Pictures of geometry: objects drawn on their image, and ground truth beside prediction.

Small images are drawn enlarged (the short side to at least ``MIN_SIDE`` pixels) so that labels stay readable.
"""
from __future__ import annotations

import textwrap
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


def _font() -> ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


def draw_objects(image: Image.Image, objects: Iterable[Obj], color: tuple[int, int, int]) -> Image.Image:
    """A copy of ``image`` (enlarged if small) with each object's geometry and ``desc`` drawn in ``color``.

    Entries without geometry (unreadable predictions) are not drawn.
    """
    scale = min(MAX_SCALE, max(1.0, MIN_SIDE / min(image.size)))
    canvas = image.convert('RGB').resize((round(image.width * scale), round(image.height * scale)))
    draw = ImageDraw.Draw(canvas)
    font = _font()
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
        box = draw.textbbox(anchor, obj.desc, font=font)
        draw.rectangle(box, fill=color)
        draw.text(anchor, obj.desc, fill=(255, 255, 255), font=font)
    return canvas


def _caption(lines: list[str], width: int) -> Image.Image:
    font = _font()
    chars = max(20, width // (FONT_SIZE // 2 + 1))
    wrapped = [piece for line in lines for piece in (textwrap.wrap(line, chars) or [''])]
    panel = Image.new('RGB', (width, 8 + (FONT_SIZE + 4) * len(wrapped)), 'white')
    draw = ImageDraw.Draw(panel)
    for i, line in enumerate(wrapped):
        draw.text((6, 4 + (FONT_SIZE + 4) * i), line, fill=(20, 20, 20), font=font)
    return panel


def side_by_side(panels: list[tuple[str, Image.Image, list[str]]]) -> Image.Image:
    """Panels left to right, each a title, a picture and caption lines below it."""
    columns = []
    for title, picture, lines in panels:
        columns.append([_caption([title], picture.width), picture, _caption(lines, picture.width)])
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
