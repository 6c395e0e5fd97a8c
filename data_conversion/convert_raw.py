"""Convert a raw annotation export (an images folder + one JSON of per-image object lists) into geometry records.

    python -m data_conversion.convert_raw --annotations export.json --images export/images --out train.jsonl

The export format (docs/data/DATA_PREPROCESSING_PIPELINE.md):

    {"images": [
      {"file": "0001.jpg",
       "objects": [{"label": "car",  "shape": "box",      "points": [[x1, y1], [x2, y2]]},
                   {"label": "lane", "shape": "polyline", "points": [[x, y], [x, y], ...]},
                   {"label": "roof", "shape": "polygon",  "points": [[x, y], [x, y], [x, y], ...]}]}
    ]}

Points are pixels. Width and height are read from each image file's header (an image that does not open, has
samples wider than 8 bits or an EXIF rotation is skipped, as by every detection converter). Objects are checked
against the contract; a bad object skips its image (with the reason), so a record is never written with objects
silently lost.
The `images` array is read as a stream.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from public_data.common import (
    ConversionError,
    Skip,
    convert,
    opening_byte,
    parser,
    relative_image,
    run,
    stored_size,
    stream_json_array,
)
from src.datasets.contract import geometry_problems

SHAPES = {'box': 'bbox_2d', 'polygon': 'poly', 'polyline': 'line'}


def convert_image(entry: Any, images_dir: Path, out: Path, dataset: str) -> dict[str, Any]:
    if not isinstance(entry, dict):
        raise Skip(f'an `images` entry must be an object with `file` and `objects`, got {entry!r:.60}')
    path = images_dir / str(entry.get('file', ''))
    if not entry.get('file') or not path.is_file():
        raise Skip(f'image file not found: {path}')
    width, height = stored_size(path, str(path))
    objects = []
    for i, obj in enumerate(entry.get('objects') or []):
        if not isinstance(obj, dict):
            raise Skip(f'objects[{i}] is not an object with `label`, `shape` and `points`: {obj!r:.60}')
        kind = SHAPES.get(obj.get('shape'))
        if kind is None:
            raise Skip(f'objects[{i}]: unknown shape {obj.get("shape")!r} (valid: {", ".join(SHAPES)})')
        try:
            coords = [float(v) for point in obj['points'] for v in point]
        except (KeyError, TypeError, ValueError):
            raise Skip(f'objects[{i}]: `points` must be a list of [x, y] pairs') from None
        if kind == 'bbox_2d' and len(coords) == 4:
            xs, ys = coords[0::2], coords[1::2]
            coords = [min(xs), min(ys), max(xs), max(ys)]
        label = obj.get('label')
        converted = {'desc': label.strip() if isinstance(label, str) else '', kind: coords}
        problems = geometry_problems(converted, width, height)
        if not isinstance(label, str):  # str() would write null as "None" and a list as "['car', 'red']"
            problems.append(f'`label` must be a text, got {label!r:.40}')
        elif not converted['desc']:
            problems.append('empty label')
        if problems:
            raise Skip(f'objects[{i}]: ' + '; '.join(problems))
        objects.append(converted)
    if not objects:
        raise Skip('no objects')
    return {'images': [relative_image(path, out)], 'width': width, 'height': height, 'objects': objects,
            'dataset': dataset}


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--annotations', type=Path, required=True, help='the export JSON')
    p.add_argument('--images', type=Path, required=True, help='the export image folder')
    p.add_argument('--dataset', default='raw', help='the `dataset` name written into each record')
    args = p.parse_args(argv)
    with open(args.annotations, 'rb') as f:
        if opening_byte(f.read(1 << 16)) == b'[':
            raise ConversionError(f'{args.annotations}: the top level is a list; the export is an object '
                                  '{"images": [{"file": ..., "objects": [...]}, ...]}; nothing was written')
    items = ((f'image {e.get("file")}' if isinstance(e, dict) else f'images[{i}]', e)
             for i, e in enumerate(stream_json_array(args.annotations, 'images.item')))
    convert(items, lambda e: convert_image(e, args.images, args.out, args.dataset), args.out, desc='raw export',
            inputs=[args.annotations])


if __name__ == '__main__':
    sys.exit(run(main))
