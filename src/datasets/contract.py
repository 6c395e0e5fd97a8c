"""The JSONL contract for geometry records (docs/data/DATA_JSONL_CONTRACT.md), checked field by field.

A geometry record carries one image with its pixel size and annotated objects::

    {"images": ["img/0001.jpg"], "width": 1024, "height": 768,
     "objects": [{"desc": "car", "bbox_2d": [x1, y1, x2, y2]},
                 {"desc": "lane", "line": [x, y, x, y, ...]},
                 {"desc": "roof", "poly": [x, y, x, y, x, y, ...]}],
     "summary": "...", "dataset": "roads"}

Coordinates are pixels of the stored image. ``record_problems`` returns every problem of a record, so the
validator can report them all; the dataset raises on the first record that has any. Each record kind (this one, and
the chat records of ``builders/chat.py``) has one schema, and a key it does not know is an error, never dropped.
"""
from __future__ import annotations

import base64
import binascii
import codecs
import difflib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

from ..config.reserved_text import reserved_text_problem
from ..rewards.summary import reference_problem


class RecordError(ValueError):
    """A record that breaks the JSONL contract; the message starts with ``file:line``."""


GEOMETRY_KEYS = ('bbox_2d', 'poly', 'line')
RECORD_KEYS = ('images', 'width', 'height', 'objects', 'summary', 'dataset', '_fusion_source')
OBJECT_KEYS = ('desc', *GEOMETRY_KEYS)
MODES = ('dense', 'summary')


def unknown_keys_problem(keys: Iterable[Any], valid: Iterable[str], what: str) -> str | None:
    """A problem naming the keys of ``what`` that are not in ``valid`` (with the closest valid name), or None."""
    valid = list(valid)
    unknown = [str(k) for k in keys if k not in valid]
    if not unknown:
        return None
    hints = [f'`{k}` (did you mean `{close[0]}`?)' if (close := difflib.get_close_matches(k, valid, n=1, cutoff=0.6))
             else f'`{k}`' for k in unknown]
    return f'{what}: unknown key(s) {", ".join(hints)}; valid: {", ".join(valid)}'


def _no_constants(name: str) -> Any:
    raise ValueError(f'{name} is not a JSON number (JSON has no NaN or Infinity); write a finite number')


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise ValueError(f'key "{key}" appears twice in one object; JSON keeps only the second silently. Merge '
                             'the two')
        seen[key] = value
    return seen
# Minimum number of coordinates (2 per point) per geometry.
MIN_COORDS = {'bbox_2d': 4, 'poly': 6, 'line': 4}


def parse_line(line: bytes, where: str) -> Any:
    """One JSONL line parsed strictly; a line that is not UTF-8 (Latin-1, UTF-16, ...), not JSON, with a key twice in
    one object, with NaN / Infinity, nested too deep or with a number too long to read is a ``RecordError`` naming
    ``where`` (file:line), never a crash."""
    if line.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or (len(line) > 1 and b'\x00' in line[:2]):
        raise RecordError(f'{where}: the file is UTF-16; JSON Lines are UTF-8: convert it (e.g. iconv -f UTF-16 -t '
                          'UTF-8)')
    try:
        text = line.decode('utf-8')
    except UnicodeDecodeError as exc:
        raise RecordError(f'{where}: not UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1}); JSON Lines '
                          'are UTF-8: re-save the file as UTF-8 (e.g. iconv -f latin1 -t UTF-8)') from None
    try:
        return json.loads(text.removeprefix('\ufeff'), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except json.JSONDecodeError as exc:
        raise RecordError(f'{where}: invalid JSON: {exc}') from None
    except RecursionError:
        raise RecordError(f'{where}: invalid JSON: nested too deeply to read') from None
    except ValueError as exc:  # a duplicate key, NaN / Infinity, an integer of thousands of digits
        raise RecordError(f'{where}: invalid JSON: {exc}') from None


def is_chat_record(record: dict[str, Any]) -> bool:
    """Chat records (ready ``messages``, or ms-swift's ``query`` / ``response`` rows) pass through; every other
    record is a geometry / summary record."""
    return 'messages' in record or ('response' in record and 'query' in record)


REMOTE = ('http://', 'https://')


def remote_problem(value: Any) -> str | None:
    """Training runs offline: a remote image or video is refused with what to do instead."""
    if isinstance(value, str) and value.startswith(REMOTE):
        return (f'{value:.80} is a remote URL; training reads local files only (machines train offline): download '
                'it and give the local path')
    return None


def data_url_problem(value: Any) -> str | None:
    """A ``data:`` URL must be ``data:<mime>;base64,<payload>`` with valid base64 (what ms-swift decodes)."""
    if not (isinstance(value, str) and value.startswith('data:')):
        return None
    head, _, payload = value.partition(',')
    if not head.endswith(';base64') or not payload:
        return f'{value:.40}...: a data URL must be data:<mime>;base64,<payload>'
    try:
        base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        return f'{value:.40}...: the data URL\'s base64 does not decode ({exc})'
    return None


@dataclass
class MediaSlot:
    """One place a record names an image or video: ``holder[key]``. Every reader and rewriter of media paths (the
    record check, the offline mixture's rebasing) goes through ``media_slots``, so a form one of them knows is never
    missed by another (an OpenAI ``image_url`` item was checked by neither, and not rebased)."""
    field: str
    kind: str
    holder: Any
    key: Any
    url: bool = False
    """An OpenAI ``image_url``: a ``file://`` prefix is the path's, as the chat builder reads it."""

    @property
    def value(self) -> Any:
        value = self.holder[self.key]
        return value.removeprefix('file://') if self.url and isinstance(value, str) else value

    def set(self, value: Any) -> None:
        self.holder[self.key] = value


def media_slots(record: dict[str, Any]) -> list[MediaSlot]:
    """Every image and video a record names: ``images`` / ``videos`` entries, and ``image`` / ``video`` /
    ``image_url`` content items of its messages; in record order."""
    slots = []
    for list_field, kind in (('images', 'image'), ('videos', 'video')):
        values = record.get(list_field)
        if isinstance(values, list):
            slots += [MediaSlot(f'{list_field}[{i}]', kind, values, i) for i in range(len(values))]
    for m, message in enumerate(record.get('messages') or []):
        content = message.get('content') if isinstance(message, dict) else None
        for c, item in enumerate(content if isinstance(content, list) else []):
            kind = item.get('type') if isinstance(item, dict) else None
            where = f'messages[{m}].content[{c}]'
            if kind in ('image', 'video') and kind in item:
                slots.append(MediaSlot(f'{where}.{kind}', kind, item, kind))
            elif kind == 'image_url' and isinstance(item.get('image_url'), dict) and 'url' in item['image_url']:
                slots.append(MediaSlot(f'{where}.image_url.url', 'image', item['image_url'], 'url', url=True))
            elif kind == 'image_url' and 'image_url' in item and not isinstance(item['image_url'], dict):
                slots.append(MediaSlot(f'{where}.image_url', 'image', item, 'image_url', url=True))
    return slots


def image_path(value: Any, base_dir: Path) -> Path | None:
    """The file an ``images`` entry names (relative to the JSONL), or None for inline bytes and URLs."""
    if isinstance(value, str) and not value.startswith((*REMOTE, 'data:')):
        return Path(os.path.abspath(base_dir / value))  # `..` removed, so one file is always one string
    return None


def number_list(value: Any) -> bool:
    """A list of finite numbers (booleans excluded): what every geometry is."""
    return isinstance(value, list) and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in value)


def geometry_problems(obj: dict[str, Any], width: float, height: float) -> list[str]:
    """Problems of one object's geometry: kind, shape, ordering, and every point inside the image."""
    kinds = [k for k in GEOMETRY_KEYS if k in obj]
    if len(kinds) != 1:
        return [f'needs exactly one geometry of {", ".join(GEOMETRY_KEYS)}, found {kinds or "none"}']
    kind = kinds[0]
    coords = obj[kind]
    if not number_list(coords):
        return [f'`{kind}` must be a list of numbers, got {coords!r:.60}']
    if kind == 'bbox_2d' and len(coords) != 4:
        return [f'`bbox_2d` needs 4 numbers [x1, y1, x2, y2], got {len(coords)}']
    if len(coords) < MIN_COORDS[kind] or len(coords) % 2:
        return [f'`{kind}` needs an even number of coordinates, at least {MIN_COORDS[kind]}, got {len(coords)}']
    problems = []
    xs, ys = coords[0::2], coords[1::2]
    if min(xs) < 0 or max(xs) > width or min(ys) < 0 or max(ys) > height:
        hint = ('; the coordinates look normalised to 0-1000, but the contract wants pixels of the image'
                if max(coords) <= 1000 and min(coords) >= 0 else '')
        problems.append(f'`{kind}` {coords} leaves the {width}x{height} image{hint}')
    if kind == 'bbox_2d' and not (coords[0] < coords[2] and coords[1] < coords[3]):
        problems.append(f'`bbox_2d` {coords} must have x1 < x2 and y1 < y2')
    if kind == 'poly' and collinear(coords):
        problems.append(f'`poly` {coords} encloses no area (its points lie on one line); an object has an extent, '
                        'so draw its outline, or give a `line` if it is one')
    return problems


def collinear(coords: list[float]) -> bool:
    """Whether the points x, y, x, y, ... all lie on one line (or on one point). A self-crossing outline (a
    figure eight) is not: its lobes enclose area even where a signed area sums to 0."""
    points = list(zip(coords[0::2], coords[1::2]))
    x0, y0 = points[0]
    far = next(((x, y) for x, y in points if (x, y) != (x0, y0)), None)
    if far is None:
        return True
    dx, dy = far[0] - x0, far[1] - y0
    return all(abs(dx * (y - y0) - dy * (x - x0)) <= 1e-9 * (abs(dx) + abs(dy)) * (1 + abs(x - x0) + abs(y - y0))
               for x, y in points)


def record_problems(record: Any, base_dir: Path, check_files: bool = True, mode: str | None = None) -> list[str]:
    """Every contract problem of a geometry record, each naming its field; empty when the record is valid.

    ``mode`` (`custom.mode`) adds what that mode needs to train: objects to list (`dense`) or a summary text."""
    if not isinstance(record, dict):
        return [f'a record must be a JSON object, got {type(record).__name__}']
    problems = []
    if (unknown := unknown_keys_problem(record, RECORD_KEYS, 'the record')) is not None:
        chat_keys = [k for k in ('messages', 'videos') if k in record]
        hint = (f' ({", ".join(chat_keys)} belong to chat records, which carry `messages`)' if chat_keys else '')
        problems.append(unknown + hint)
    images = record.get('images')
    if not isinstance(images, list) or len(images) != 1:
        problems.append('`images` must be a list with exactly one image (the one the objects are drawn on)')
    else:
        value = images[0]
        path = image_path(value, base_dir)
        if isinstance(value, dict):
            if set(value) != {'bytes'} or not isinstance(value['bytes'], str):
                problems.append('images[0]: inline images are {"bytes": "<base64>"}')
        elif not isinstance(value, str) or not value:
            problems.append(f'images[0]: must be a path or {{"bytes": ...}}, got {value!r:.60}')
        elif problem := remote_problem(value) or data_url_problem(value):
            problems.append(f'images[0]: {problem}')
        elif check_files and path is not None and not path.is_file():
            problems.append(f'images[0]: image file not found: {path}')
    width, height = record.get('width'), record.get('height')
    size_ok = all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in (width, height))
    if not size_ok:
        problems.append(f'`width` and `height` must be positive integers (pixels), got {width!r} x {height!r}')
    objects = record.get('objects', [])
    if not isinstance(objects, list):
        problems.append('`objects` must be a list')
        objects = []
    summary = record.get('summary')
    if not objects and not isinstance(summary, str):
        problems.append('needs `objects` (dense / grounding) or a `summary` text')
    if 'summary' in record and not isinstance(summary, str):
        problems.append('`summary` must be a string')
    elif isinstance(summary, str) and (problem := reserved_text_problem(summary)) is not None:
        problems.append(f'`summary` {problem}')
    problems += _mode_problems(record, objects, mode)
    for i, obj in enumerate(objects):
        if not isinstance(obj, dict):
            problems.append(f'objects[{i}]: must be an object with `desc` and one geometry')
            continue
        if (unknown := unknown_keys_problem(obj, OBJECT_KEYS, f'objects[{i}]')) is not None:
            problems.append(unknown)
        if not isinstance(obj.get('desc'), str) or not obj['desc'].strip():
            problems.append(f'objects[{i}].desc: must be a non-empty string')
        elif (problem := reserved_text_problem(obj['desc'])) is not None:
            problems.append(f'objects[{i}].desc {problem}')
        if size_ok:
            problems += [f'objects[{i}]: {p}' for p in geometry_problems(obj, width, height)]
    for key in ('dataset', '_fusion_source'):
        if key in record and not isinstance(record[key], str):
            problems.append(f'`{key}` must be a string')
    if size_ok and objects and not any(p.startswith('objects[') for p in problems):
        coords = [v for obj in objects for k in GEOMETRY_KEYS if k in obj for v in obj[k]]
        if max(coords) <= 1 and max(width, height) > 1:
            problems.append(f'every coordinate is within [0, 1] ({coords[:4]}...): they look normalised to the '
                            f'image size, but the contract wants pixels of the {width}x{height} image; multiply x by '
                            'the width and y by the height')
    return problems


def _mode_problems(record: dict[str, Any], objects: list[Any], mode: str | None) -> list[str]:
    """What the run's mode needs of a record that is otherwise valid: something to answer."""
    if mode == 'dense' and not objects:
        kind = 'a summary record' if isinstance(record.get('summary'), str) else 'a record'
        return [f'`custom.mode: dense` trains the model to list the objects, and this is {kind} without any: it '
                'would train the answer `[]`. Give it objects, train it with `custom.mode: summary`, or leave it out']
    if mode == 'summary' and isinstance(record.get('summary'), str) and not record['summary'].strip():
        return ['`summary` is empty: `custom.mode: summary` would train an empty answer; give the summary text or '
                'leave the record out']
    if mode == 'summary' and isinstance(record.get('summary'), str):
        # what the summary rewards and `src.eval` judge answers against: refused here, not at the step that samples it
        if (problem := reference_problem(record['summary'])) is not None:
            return [f'`summary` {problem}']
    if mode == 'summary' and not isinstance(record.get('summary'), str) and objects:
        return ['`custom.mode: summary` trains the record\'s `summary` text, and this record has none (only '
                '`objects`); add the summary, or train it with `custom.mode: dense`']
    return []
