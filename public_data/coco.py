"""Convert COCO-format instance annotations (COCO, LVIS) into geometry records, one per image.

    python -m public_data.coco --annotations annotations/instances_val2017.json --images val2017 --out coco.jsonl
    python -m public_data.coco --annotations lvis_v1_val.json --images val2017 --out lvis.jsonl --dataset lvis

Boxes become `bbox_2d` ([x, y, w, h] -> [x1, y1, x2, y2]); with `--geometry poly` polygon segmentations become
`poly` (one object per polygon part). Crowd (RLE) annotations, degenerate boxes and images whose file is missing or
that end with no objects are skipped and reported. LVIS files name images by `coco_url`; the file name is its last
part. The annotation file is read as a stream; only the compact per-image object lists are held in memory (COCO
groups objects by image only through the annotation list, so they cannot be written before it has been read).
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from .common import Report, Skip, convert, parser, relative_image, stream_json_array


def _file_name(image: dict[str, Any]) -> str:
    return image.get('file_name') or str(image['coco_url']).rsplit('/', 1)[-1]


def annotation_objects(ann: dict[str, Any], name: str, width: int, height: int, geometry: str) -> list[dict]:
    """The contract objects of one annotation (raises Skip with the reason when there are none)."""
    if ann.get('iscrowd'):
        raise Skip('crowd annotation (RLE mask): no box or polygon per instance')
    if geometry == 'poly':
        parts = ann.get('segmentation')
        if not isinstance(parts, list) or not parts:
            raise Skip('no polygon segmentation')
        objects = []
        for part in parts:
            coords = [min(max(v, 0.0), float(width if i % 2 == 0 else height)) for i, v in enumerate(part)]
            if len(coords) >= 6 and len(coords) % 2 == 0:
                objects.append({'desc': name, 'poly': [round(v, 2) for v in coords]})
        if not objects:
            raise Skip('polygon with fewer than 3 points')
        return objects
    x, y, w, h = ann['bbox']
    x1, y1 = max(0.0, x), max(0.0, y)
    x2, y2 = min(float(width), x + w), min(float(height), y + h)
    if x2 - x1 < 1 or y2 - y1 < 1:
        raise Skip(f'degenerate box {ann["bbox"]}')
    return [{'desc': name, 'bbox_2d': [round(v, 2) for v in (x1, y1, x2, y2)]}]


def convert_file(annotations: Path, images_dir: Path, out: Path, geometry: str = 'bbox',
                 dataset: str = 'coco') -> Report:
    images = {img['id']: img for img in stream_json_array(annotations, 'images.item')}
    names = {cat['id']: cat['name'] for cat in stream_json_array(annotations, 'categories.item')}
    report = Report()
    objects: dict[Any, list[dict]] = defaultdict(list)
    for ann in stream_json_array(annotations, 'annotations.item'):
        image = images.get(ann.get('image_id'))
        if image is None or ann.get('category_id') not in names:
            report.skip(f'annotation {ann.get("id")}', 'unknown image_id or category_id')
            continue
        try:
            objects[image['id']] += annotation_objects(ann, names[ann['category_id']], image['width'],
                                                       image['height'], geometry)
        except Skip as exc:
            report.skip(f'annotation {ann.get("id")}', str(exc))

    def convert_one(image: dict[str, Any]) -> dict[str, Any]:
        path = images_dir / _file_name(image)
        if not path.is_file():
            raise Skip(f'image file not found: {path}')
        if not objects.get(image['id']):
            raise Skip('image has no convertible objects')
        return {'images': [relative_image(path, out)], 'width': image['width'], 'height': image['height'],
                'objects': objects[image['id']], 'dataset': dataset}

    items = ((f'image {image_id}', image) for image_id, image in images.items())
    return convert(items, convert_one, out, desc=f'{dataset} images', total=len(images), report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--annotations', type=Path, required=True, help='COCO / LVIS instances JSON')
    p.add_argument('--images', type=Path, required=True, help='the folder holding the image files')
    p.add_argument('--geometry', choices=['bbox', 'poly'], default='bbox', help='boxes or polygon segmentations')
    p.add_argument('--dataset', default='coco', help='the `dataset` name written into each record')
    args = p.parse_args(argv)
    convert_file(args.annotations, args.images, args.out, args.geometry, args.dataset)


if __name__ == '__main__':
    main()
