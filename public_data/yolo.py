"""Convert an Ultralytics YOLO dataset (detection, segmentation, oriented boxes or pose) into geometry records.

    python -m public_data.yolo --input coco8/data.yaml --split train --out coco8_train.jsonl

`--input` is the dataset's `data.yaml`: `path` (the dataset root; relative to the YAML's folder, or pass --root),
`train` / `val` / `test` (a folder of images, a `.txt` list of image paths, or a list of either, relative to the
root; a `../x` that does not exist is taken as `x`, as Ultralytics does for Roboflow exports) and `names` (a mapping
`0: person` or a list; with only `nc`, class_0, class_1, ...). Labels are found as Ultralytics finds them: the last
`images` folder of an image's path replaced by `labels`, the extension by `.txt`. Each label line is normalised 0-1:

    class cx cy w h                  a box (centre and size)       -> bbox_2d in pixels
    class x1 y1 x2 y2 ... xn yn      a polygon (segmentation, OBB) -> poly in pixels (--geometry bbox: its box)
    class cx cy w h kx ky [v] ...    pose (`kpt_shape` in data.yaml) -> the box; keypoints are not kept

An image with an empty label file or none is a background image: it is dropped and counted (a dense-caption record
needs objects). A label line that does not parse, a class outside `names`, or a coordinate outside 0-1 beyond
rounding (pixel labels) is malformed input: one error with file:line, and nothing is written. Coordinates within
rounding of the edge are clamped and counted.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import yaml

from .common import (
    ConversionError,
    Report,
    Skip,
    add_detection_flags,
    box_object,
    convert,
    geometry_record,
    image_objects,
    parser,
    polygon_object,
    read_text,
    run,
    stored_size,
)

IMAGE_SUFFIXES = {'.bmp', '.dng', '.jpeg', '.jpg', '.mpo', '.png', '.tif', '.tiff', '.webp', '.pfm', '.heic'}
"""Ultralytics' image formats (``IMG_FORMATS``): every one is an image of the split, so one PIL cannot open (HEIC,
most DNG and PFM) is a counted skip with its reason, not left out of the count."""
EDGE_TOLERANCE = 0.01
"""How far outside 0-1 a normalised coordinate may be and still be rounding (clamped and counted); beyond it the
label is not normalised (pixel labels) and the file is refused."""


def label_path(image: Path) -> Path:
    """Where Ultralytics looks for an image's labels (``img2label_paths``): the last ``/images/`` of the path
    becomes ``/labels/``, the extension ``.txt``."""
    text, images, labels = str(image), f'{os.sep}images{os.sep}', f'{os.sep}labels{os.sep}'
    if images in text:
        head, tail = text.rsplit(images, 1)
        text = head + labels + tail
    return Path(text).with_suffix('.txt')


def class_names(data: dict[str, Any], source: Path) -> dict[int, str]:
    """`names` as {index: name}, from a mapping or a list; `nc`, when given, must agree."""
    names = data.get('names')
    if names is None and isinstance(data.get('nc'), int) and data['nc'] > 0:
        names = [f'class_{i}' for i in range(data['nc'])]  # as Ultralytics names them without `names`
    if isinstance(names, list):
        names = dict(enumerate(names))
    if isinstance(names, dict) and all(isinstance(k, int) or str(k).isdigit() for k in names):
        names = {int(k): v for k, v in names.items()}
    if not isinstance(names, dict) or not names:
        raise ConversionError(f'{source}: `names` must be a list of class names or a mapping `0: name`, got '
                              f'{names!r:.80}; nothing was written')
    if 'nc' in data and data['nc'] != len(names):
        raise ConversionError(f'{source}: `nc: {data["nc"]}` but `names` has {len(names)} classes; nothing was '
                              'written')
    return {int(k): str(v) for k, v in names.items()}


def split_images(data: dict[str, Any], split: str, root: Path, source: Path) -> list[Path]:
    """The image files of ``split``: folders searched recursively, `.txt` lists read (entries relative to the list's
    folder), in a stable order."""
    if split == 'val' and not data.get(split) and data.get('validation'):
        split = 'validation'  # Ultralytics reads `validation` as `val`
    if not data.get(split):
        offered = [s for s in ('train', 'val', 'test') if data.get(s)]
        raise ConversionError(f'{source}: no `{split}` split (it names {", ".join(offered) or "none"}); pass --split')
    entries = data[split] if isinstance(data[split], list) else [data[split]]
    images: list[Path] = []
    for entry in entries:
        path = Path(entry) if Path(entry).is_absolute() else root / entry
        if not path.exists() and str(entry).startswith('../'):
            path = root / str(entry)[3:]  # Roboflow writes `../train/images` beside data.yaml; Ultralytics allows it
        if path.is_dir():
            images += sorted(p for p in path.rglob('*') if p.suffix.lower() in IMAGE_SUFFIXES
                             and not p.name.startswith('.'))  # macOS `._x.jpg` companions are not images
        elif path.is_file() and path.suffix == '.txt':
            lines = [line.strip() for line in read_text(path).splitlines() if line.strip()]
            images += [Path(line) if Path(line).is_absolute() else path.parent / line for line in lines]
        else:
            raise ConversionError(f'{source}: `{split}: {entry}` is neither a folder of images nor a .txt list '
                                  f'({path} does not exist); nothing was written')
    return images


def parse_labels(path: Path, names: dict[int, str], keypoints: int,
                 report: Report) -> list[tuple[str, list[float], str]]:
    """(class name, normalised numbers, kind) per label line; ``keypoints`` numbers per line follow a pose box.
    Malformed lines raise ``ConversionError`` with the file and line; a repeated line is dropped and counted (as
    Ultralytics drops it)."""
    rows, seen = [], set()
    for line_no, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
            continue
        where = f'{path}:{line_no}'
        try:
            values = [float(v) for v in line.split()]
        except ValueError:
            raise ConversionError(f'{where}: not a label line `class x y ...` of numbers: {line.strip()!r:.80}; '
                                  'nothing was written') from None
        if tuple(values) in seen:  # by value, as Ultralytics' np.unique: `0.5` and `0.50` are one label
            report.notes['repeated label line dropped'] += 1
            continue
        seen.add(tuple(values))
        if values[0] != int(values[0]) or int(values[0]) not in names:
            raise ConversionError(f'{where}: class {values[0]:g} is not in `names` (0-{max(names)}); nothing was '
                                  'written')
        numbers = values[1:]
        if keypoints:
            kind = 'box'
            if len(numbers) != 4 + keypoints:
                raise ConversionError(f'{where}: a pose label has 4 box numbers and {keypoints} keypoint numbers '
                                      f'(`kpt_shape`), this line has {len(numbers)}; nothing was written')
            numbers = numbers[:4]
        elif len(numbers) == 4:
            kind = 'box'
        elif len(numbers) >= 6 and len(numbers) % 2 == 0:
            kind = 'polygon'
        else:
            raise ConversionError(f'{where}: {len(numbers)} numbers after the class: a box has 4 (cx cy w h), a '
                                  'polygon 6 or more in x y pairs; nothing was written')
        bad = [v for v in numbers if not -EDGE_TOLERANCE <= v <= 1 + EDGE_TOLERANCE]
        if bad or any(v != v for v in numbers):
            raise ConversionError(f'{where}: coordinate {bad[0] if bad else "nan"} is outside 0-1; YOLO labels are '
                                  'normalised by the image size (pixel labels must be divided by it); nothing was '
                                  'written')
        rows.append((names[int(values[0])], numbers, kind))
    return rows


def to_object(row: tuple[str, list[float], str], width: int, height: int, geometry: str,
              report: Report) -> dict[str, Any]:
    name, numbers, kind = row
    if kind == 'box':
        cx, cy, w, h = numbers
        corners = [(cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height]
        return box_object(name, corners, width, height, report)
    points = [v * (width if i % 2 == 0 else height) for i, v in enumerate(numbers)]
    if geometry == 'bbox':
        xs, ys = points[0::2], points[1::2]
        return box_object(name, [min(xs), min(ys), max(xs), max(ys)], width, height, report)
    return polygon_object(name, points, width, height, report)


def convert_file(data_yaml: Path, split: str, out: Path, root: Path | None = None, geometry: str = 'auto',
                 dataset: str | None = None, keep_partial: bool = False) -> Report:
    try:
        data = yaml.safe_load(read_text(data_yaml))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConversionError(f'{data_yaml}: cannot read it as YAML ({exc}); nothing was written') from None
    if not isinstance(data, dict):
        raise ConversionError(f'{data_yaml}: a YOLO data.yaml is a mapping with `path`, `train`, `val`, `names`; '
                              'nothing was written')
    if root is None:
        root = data_yaml.resolve().parent / str(data.get('path') or '.')
    if not root.is_dir():
        raise ConversionError(f'{data_yaml}: `path: {data.get("path")}` resolves to {root}, which is not a folder '
                              '(Ultralytics also looks under its datasets_dir setting); pass --root DIR')
    names = class_names(data, data_yaml)
    kpt_shape = data.get('kpt_shape')
    keypoints = int(kpt_shape[0]) * int(kpt_shape[1]) if kpt_shape else 0
    images = split_images(data, split, root, data_yaml)
    report = Report()

    def convert_one(image: Path) -> dict[str, Any]:
        if not image.is_file():
            raise Skip(f'image file not found: {image}')
        labels = label_path(image)
        rows = parse_labels(labels, names, keypoints, report) if labels.is_file() else []
        if not rows:
            raise Skip('background image (empty or missing label file): no objects')
        width, height = stored_size(image, str(image))
        if keypoints:
            report.notes['pose label: the box kept, its keypoints not'] += len(rows)
        objects = image_objects(rows, lambda row: to_object(row, width, height, geometry, report), keep_partial,
                                report)
        return geometry_record(image, out, width, height, objects, dataset or root.resolve().name)

    items = ((str(image), image) for image in images)
    return convert(items, convert_one, out, desc=f'yolo {split}', inputs=[data_yaml], total=len(images),
                   report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help="the dataset's data.yaml")
    p.add_argument('--split', default='train', help='train, val or test (default train)')
    p.add_argument('--root', type=Path, help="the dataset root, when data.yaml's `path` does not lead to it")
    p.add_argument('--geometry', choices=['auto', 'bbox'], default='auto',
                   help='auto: boxes stay boxes, polygons polygons; bbox: polygons become their boxes')
    add_detection_flags(p, 'the dataset root folder\'s name')
    args = p.parse_args(argv)
    convert_file(args.input, args.split, args.out, args.root, args.geometry, args.dataset, args.keep_partial)


if __name__ == '__main__':
    sys.exit(run(main))
