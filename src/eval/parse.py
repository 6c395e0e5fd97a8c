"""Read a dense-caption answer back into objects in pixels; never raises.

The model answers as it was trained (``src/datasets/builders``): a JSON list of ``{"desc", "bbox_2d" | "poly" |
"line"}`` in the run's coordinate convention. Generation may wrap it in a code fence, stop half way or write an entry
that is not an object with one geometry. A text with no readable JSON list is a parse failure (every ground-truth
object a miss); an unreadable entry inside a readable list stays a prediction without geometry, so it counts as a
false positive and never matches.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from ..datasets.builders.coords import Coords
from ..datasets.contract import GEOMETRY_KEYS, MIN_COORDS, number_list

INVALID_DESC = '<invalid>'
"""The class of a predicted entry that has no readable `desc`."""


@dataclass(frozen=True)
class Obj:
    """One object: its description and geometry in pixels (``kind`` / ``coords`` None for an unreadable entry)."""

    desc: str
    kind: str | None = None
    coords: tuple[float, ...] | None = None


@dataclass(frozen=True)
class DenseAnswer:
    objects: tuple[Obj, ...] = ()
    parsed: bool = False
    """A JSON list was found; False means a parse failure."""
    invalid: int = 0
    """Entries of the list that are not ``{"desc", <one geometry>}`` with numeric coordinates of the right length."""


def _entry(value: Any, width: int, height: int, coords: Coords) -> Obj | None:
    if not isinstance(value, dict):
        return None
    desc = value.get('desc')
    kinds = [k for k in GEOMETRY_KEYS if k in value]
    if not isinstance(desc, str) or not desc.strip() or len(kinds) != 1:
        return None
    values = value[kinds[0]]
    # The contract's shape rules, but not its placement rules: a box outside the image or with x2 <= x1 is still a
    # prediction (clipped, or scoring IoU 0), not an unreadable entry.
    if (not number_list(values) or len(values) < MIN_COORDS[kinds[0]] or len(values) % 2
            or (kinds[0] == 'bbox_2d' and len(values) != 4)):
        return None
    return Obj(desc, kinds[0], tuple(coords.from_model(values, width, height)))


def parse_dense(text: Any, width: int, height: int, coords: Coords = Coords()) -> DenseAnswer:
    """The objects of a dense answer, in pixels of a ``width`` x ``height`` image (``coords``: the convention the
    answer is written in).

    >>> parse_dense('[{"desc": "car", "bbox_2d": [0, 0, 500, 500]}]', 200, 100).objects
    (Obj(desc='car', kind='bbox_2d', coords=(0.0, 0.0, 100.0, 50.0)),)
    """
    value = _object_list(text) if isinstance(text, str) else None
    if value is None:
        return DenseAnswer()
    objects, invalid = [], 0
    for entry in value:
        obj = _entry(entry, width, height, coords)
        if obj is None:
            invalid += 1
            desc = entry.get('desc') if isinstance(entry, dict) else None
            obj = Obj(desc if isinstance(desc, str) and desc.strip() else INVALID_DESC)
        objects.append(obj)
    return DenseAnswer(tuple(objects), True, invalid)


def _object_list(text: str) -> list | None:
    """The answer's list of objects: the first JSON list in ``text`` that is empty or holds an object. A `[2]` in
    prose before it, or the coordinates inside a bare object (not in a list), are not the answer: reading from the
    first `[` took them for it, which hid parse failures and counted invalid objects as false positives."""
    decoder, start = json.JSONDecoder(), text.find('[')
    while start >= 0:
        try:
            value, _ = decoder.raw_decode(text[start:])
        except json.JSONDecodeError:
            value = None
        if isinstance(value, list) and (not value or any(isinstance(entry, dict) for entry in value)):
            return value
        start = text.find('[', start + 1)
    return None


def record_objects(record: dict[str, Any]) -> tuple[Obj, ...]:
    """The ground truth of a geometry record (already in pixels, checked by the contract)."""
    objects = []
    for obj in record.get('objects', []):
        kind = next(k for k in GEOMETRY_KEYS if k in obj)
        objects.append(Obj(obj['desc'], kind, tuple(float(v) for v in obj[kind])))
    return tuple(objects)
