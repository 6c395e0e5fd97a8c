"""Convert a Label Studio JSON export (image tasks with rectangles and polygons) into geometry records.

    python -m public_data.labelstudio --input project-1-at-2026-11-30.json --images media/upload --out ls.jsonl

`--input` is the export in Label Studio's JSON format (a list of tasks, each with `data.image` and `annotations`).
Regions are in percent of the image (`original_width` / `original_height`): `rectanglelabels` become boxes, a
rotated rectangle (`rotation`, degrees clockwise about its top-left corner) the polygon of its four corners, and
`polygonlabels` polygons, all in pixels. Non-region results (choices, text) are not objects and are ignored; a region
that has no box or polygon (brush masks, ellipses, keypoints) makes its image lose an object, so the task is dropped
and counted (--keep-partial keeps it without them).

`data.image` is matched to a file under `--images` (default: the export's folder), searched recursively: an upload
(`/data/upload/<project>/<8 hex>-<name>`) by its stored name, then by the name without Label Studio's prefix; a
local-storage path (`/data/local-files/?d=<path>`) by that path; a URL by its last part. A task whose image is not
found, has no annotation (or only cancelled ones) or was rotated in the editor (`image_rotation`) is skipped and
counted. Of several annotations, the one marked `ground_truth` is used, else the first (counted).
"""
from __future__ import annotations

import math
import re
import sys
from collections import defaultdict
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

from .common import (
    ConversionError,
    Report,
    Skip,
    add_detection_flags,
    box_object,
    check_output,
    convert,
    geometry_record,
    image_objects,
    images_folder,
    parser,
    polygon_object,
    run,
    stored_size,
    stream_json_array,
)

UPLOAD_PREFIX = re.compile(r'^[0-9a-f]{8}-')
"""Label Studio stores an upload as ``<first 8 hex digits of a uuid4>-<original name>``."""
REGIONS = {'rectanglelabels', 'polygonlabels'}
NOT_REGIONS = {'choices', 'textarea', 'rating', 'number', 'datetime', 'taxonomy', 'pairwise', 'ranker', 'relation'}


class ImageIndex:
    """The files under ``--images`` by name and by path relative to it, for matching ``data.image``."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        for path in folder.rglob('*'):
            if path.is_file():
                self.by_name[path.name].append(path)

    def find(self, reference: str) -> Path:
        """The file a task's ``data.image`` names (``Skip`` when there is none, or more than one)."""
        url = urlparse(reference)
        if url.path.startswith('/data/local-files/') and 'd' in parse_qs(url.query):
            relative = parse_qs(url.query)['d'][0]
            for candidate in (self.folder / relative, self.folder / Path(relative).name):
                if candidate.is_file():
                    return candidate
            raise Skip(f'image not found under --images: {relative}')
        name = unquote(Path(url.path).name)
        for candidate in (name, UPLOAD_PREFIX.sub('', name)):
            found = self.by_name.get(candidate, [])
            if len(found) > 1:
                raise Skip(f'image name {candidate} is ambiguous under --images: {found[0]}, {found[1]}')
            if found:
                return found[0]
        raise Skip(f'image not found under --images: {name}')


def chosen_annotation(task: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The results of the task's annotation: the ground-truth one, else the first that was not cancelled."""
    kept = [a for a in task.get('annotations') or [] if isinstance(a, dict) and not a.get('was_cancelled')]
    if not kept:
        raise Skip('task without annotations (none, or all cancelled)')
    if len(kept) > 1:
        truth = [a for a in kept if a.get('ground_truth')]
        report.notes['task with several annotations: the ' + ('ground truth' if truth else 'first') + ' used'] += 1
        kept = truth or kept
    return kept[0].get('result') or []


def region_object(result: dict[str, Any], width: int, height: int, report: Report) -> dict[str, Any] | None:
    """A result as a contract object (None: not a region); percent -> pixels, rotation honoured."""
    kind = result.get('type')
    if kind in NOT_REGIONS:
        return None
    if kind not in REGIONS:
        raise Skip(f'{kind} region: no box or polygon to convert')
    value = result.get('value') or {}
    labels = value.get(kind) or []
    if not labels:
        raise Skip(f'{kind} region without a label')
    desc = ', '.join(map(str, labels))
    if kind == 'polygonlabels':
        points = [v * (width if i % 2 == 0 else height) / 100 for point in value.get('points') or [] for i, v in
                  enumerate(point)]
        return polygon_object(desc, points, width, height, report)
    x, y = value['x'] * width / 100, value['y'] * height / 100
    w, h = value['width'] * width / 100, value['height'] * height / 100
    angle = math.radians(value.get('rotation') or 0)
    if not angle % (2 * math.pi):
        return box_object(desc, [x, y, x + w, y + h], width, height, report)
    cos, sin = math.cos(angle), math.sin(angle)  # clockwise on screen: y points down
    corners = [(0, 0), (w, 0), (w, h), (0, h)]
    report.notes['rotated rectangle written as a polygon'] += 1
    points = [c for dx, dy in corners for c in (x + dx * cos - dy * sin, y + dx * sin + dy * cos)]
    return polygon_object(desc, points, width, height, report)


def check_view(results: list[dict[str, Any]], width: int, height: int) -> None:
    """The regions must be of the stored image: the size Label Studio saw, and no rotation in the editor."""
    for result in results:
        seen = (result.get('original_width'), result.get('original_height'))
        if seen != (None, None) and seen != (width, height):
            raise Skip(f'Label Studio saw the image as {seen[0]}x{seen[1]}, the file is {width}x{height}')
        if result.get('image_rotation'):
            raise Skip(f'the image was rotated by {result["image_rotation"]} degrees in the editor')


def convert_file(export: Path, out: Path, images_dir: Path | None = None, dataset: str | None = None,
                 keep_partial: bool = False) -> Report:
    check_output(out, [export])
    index = ImageIndex(images_folder(images_dir, export))
    report = Report()

    def convert_one(task: Any) -> dict[str, Any]:
        if not isinstance(task, dict) or 'data' not in task:
            if isinstance(task, dict) and 'image' in task:
                raise ConversionError(f'{export}: this is a JSON-MIN export (tasks without `annotations`); export '
                                      'the project as JSON instead; nothing was written')
            raise Skip(f'not a Label Studio task (no `data`): {str(task):.60}')
        reference = (task['data'] or {}).get('image')
        if not isinstance(reference, str) or not reference:
            raise Skip('task without `data.image`')
        results = chosen_annotation(task, report)
        image = index.find(reference)
        width, height = stored_size(image, str(image))
        results = [r for r in results if isinstance(r, dict)]
        check_view(results, width, height)
        objects = image_objects(results, lambda r: region_object(r, width, height, report), keep_partial, report)
        return geometry_record(image, out, width, height, objects, dataset or 'labelstudio')

    items = ((f'task {task.get("id", i) if isinstance(task, dict) else i}', task)
             for i, task in enumerate(stream_json_array(export)))
    return convert(items, convert_one, out, desc='label studio tasks', report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help="Label Studio's JSON export")
    p.add_argument('--images', type=Path, help="the folder holding the task images (default: the export's folder)")
    add_detection_flags(p, 'labelstudio')
    args = p.parse_args(argv)
    convert_file(args.input, args.out, args.images, args.dataset, args.keep_partial)


if __name__ == '__main__':
    sys.exit(run(main))
