"""Convert COCO-format instance annotations (COCO, LVIS) into geometry records, one per image.

    python -m public_data.coco --annotations annotations/instances_val2017.json --images val2017 --out coco.jsonl
    python -m public_data.coco --annotations lvis_v1_val.json --images val2017 --out lvis.jsonl --dataset lvis

Boxes become `bbox_2d` ([x, y, w, h] -> [x1, y1, x2, y2]); with `--geometry poly` polygon segmentations become
`poly`, a multi-part polygon (an instance split by occlusion) staying one object: its parts joined by zero-width
bridges, so its area and mask are unchanged. Boxes and polygons that cross the image edge are clamped to it and
counted in the summary.

An image that would lose any of its objects (a crowd annotation stored as an RLE mask, a degenerate box, an unknown
category) is dropped by default and counted: a model trained on an image with some objects missing from the answer
learns to miss them. `--keep-partial` keeps such images with the objects that could be converted. Images whose file
is missing, does not open, has samples wider than 8 bits, an EXIF rotation or another size than the annotations say,
or that have no objects, are skipped and reported; duplicate image ids are an error. LVIS files name
images by `coco_url`; the file name is its last part. The annotation file is read as a stream; only the compact
per-image object lists are held in memory.
"""
from __future__ import annotations

import math
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

from .common import (
    ConversionError,
    Report,
    Skip,
    annotated_size,
    box_object,
    clamped,
    convert,
    coordinates,
    degenerate_polygon,
    parser,
    pixels,
    relative_image,
    run,
    stream_json_array,
)


def _file_name(image: dict[str, Any]) -> str:
    return image.get('file_name') or str(image['coco_url']).rsplit('/', 1)[-1]


def joined_polygon(parts: list[list[float]]) -> list[float]:
    """One polygon tracing every part: after each part it returns to that part's first point, so the jump to the
    next part and the final jump back are traversed both ways and enclose no area."""
    joined: list[float] = []
    for part in parts:
        joined += part + part[:2]
    return joined[:-2] if len(parts) == 1 else joined


def image_size(image: dict[str, Any]) -> tuple[int, int] | Skip:
    """An image entry's (width, height) in whole pixels (``100.0`` is 100), or the ``Skip`` its image gets."""
    size = image.get('width'), image.get('height')
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 and v == int(v)
               for v in size):
        return Skip(f'image entry without a size in whole pixels (`width`, `height`: {size[0]!r:.20} x '
                    f'{size[1]!r:.20})')
    return int(size[0]), int(size[1])


def annotation_objects(ann: dict[str, Any], name: str, width: int, height: int, geometry: str,
                       report: Report | None = None) -> list[dict]:
    """The contract object of one annotation (raises Skip with the reason when there is none)."""
    if ann.get('iscrowd'):
        raise Skip('crowd annotation (RLE mask): no box or polygon per instance')
    if geometry == 'poly':
        parts = ann.get('segmentation')
        if not isinstance(parts, list) or not parts:
            raise Skip('no polygon segmentation')
        notes = report.notes if report is not None else Counter()
        kept, moved = [], False
        for i, part in enumerate(parts):
            values = coordinates(part, f'segmentation part {i}')
            coords, was_clamped = clamped(values, width, height)
            if len(coords) < 6 or len(coords) % 2 or degenerate_polygon(coords):
                notes['polygon part with under 3 points or no area dropped (as detectron2 drops it)'] += 1
                continue
            kept.append(pixels(coords))
            moved |= was_clamped
        if not kept:
            raise Skip('polygon with fewer than 3 points or no area')
        if moved:
            notes['polygon clamped at the image edge'] += 1
        return [{'desc': name, 'poly': joined_polygon(kept)}]
    if ann.get('bbox') is None:
        raise Skip('annotation without `bbox`')
    x, y, w, h = coordinates(ann['bbox'], 'bbox', 4)
    return [box_object(name, [x, y, x + w, y + h], width, height, report or Report())]


def convert_file(annotations: Path, images_dir: Path, out: Path, geometry: str = 'bbox', dataset: str = 'coco',
                 keep_partial: bool = False) -> Report:
    if not images_dir.is_dir():
        raise ConversionError(f'images folder {images_dir} does not exist')
    images: dict[Any, dict[str, Any]] = {}
    for image in stream_json_array(annotations, 'images.item'):
        if image.get('id') in images:
            raise ConversionError(f'{annotations}: image id {image.get("id")} appears twice in `images` (files '
                                  f'{_file_name(images[image["id"]])} and {_file_name(image)}); nothing was written')
        images[image.get('id')] = image
    if not images:
        raise ConversionError(f'{annotations}: no `images` (is this a COCO instances file?); nothing was written')
    names = {cat['id']: cat['name'] for cat in stream_json_array(annotations, 'categories.item')}
    sizes = {image_id: image_size(image) for image_id, image in images.items()}
    report = Report()
    objects: dict[Any, list[dict]] = defaultdict(list)
    lost: dict[Any, list[str]] = defaultdict(list)  # image id -> why objects of it could not be converted
    for ann in stream_json_array(annotations, 'annotations.item'):
        image = images.get(ann.get('image_id'))
        if image is None:
            report.skip(f'annotation {ann.get("id")}', f'unknown image_id {ann.get("image_id")}')
            continue
        if isinstance(sizes[image['id']], Skip):
            continue  # the image is skipped with that reason
        try:
            if ann.get('category_id') not in names:
                raise Skip(f'unknown category_id {ann.get("category_id")}')
            objects[image['id']] += annotation_objects(ann, names[ann['category_id']], *sizes[image['id']],
                                                       geometry, report)
        except Skip as exc:
            report.skip(f'annotation {ann.get("id")}', str(exc))
            lost[image['id']].append(str(exc).split(':')[0])

    def convert_one(image: dict[str, Any]) -> dict[str, Any]:
        if isinstance(size := sizes[image['id']], Skip):
            raise size
        path = images_dir / _file_name(image)
        if not path.is_file():
            raise Skip(f'image file not found: {path}')
        if lost.get(image['id']) and not keep_partial:
            raise Skip(f'image would lose {len(lost[image["id"]])} object(s) ({lost[image["id"]][0]}); '
                       '--keep-partial keeps it')
        if not objects.get(image['id']):
            raise Skip('image has no convertible objects')
        annotated_size(path, *size, 'the annotations say')
        return {'images': [relative_image(path, out)], 'width': size[0], 'height': size[1],
                'objects': objects[image['id']], 'dataset': dataset}

    items = ((f'image {image_id}', image) for image_id, image in images.items())
    return convert(items, convert_one, out, desc=f'{dataset} images', inputs=[annotations], total=len(images),
                   report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--annotations', type=Path, required=True, help='COCO / LVIS instances JSON')
    p.add_argument('--images', type=Path, required=True, help='the folder holding the image files')
    p.add_argument('--geometry', choices=['bbox', 'poly'], default='bbox', help='boxes or polygon segmentations')
    p.add_argument('--dataset', default='coco', help='the `dataset` name written into each record')
    p.add_argument('--keep-partial', action='store_true',
                   help='keep images some of whose objects could not be converted (default: drop and count them)')
    args = p.parse_args(argv)
    convert_file(args.annotations, args.images, args.out, args.geometry, args.dataset, args.keep_partial)


if __name__ == '__main__':
    sys.exit(run(main))
