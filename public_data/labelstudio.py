"""Convert a Label Studio JSON export (image tasks with rectangles and polygons) into geometry records.

    python -m public_data.labelstudio --input project-1-at-2026-11-30.json --images media/upload --out ls.jsonl

`--input` is the export in Label Studio's JSON format (a list of tasks, each with `data.image` and `annotations`).
Regions are in percent of the image (`original_width` / `original_height`): `rectanglelabels` (or a `<Rectangle>`
result with the `<Labels>` result of the same region) become boxes, a negative width or height drawn leftwards or
upwards, a rotated rectangle (`rotation`, degrees clockwise about its top-left corner) the polygon of its four
corners, and `polygonlabels` polygons, all in pixels; a region with two labels is two objects, as Label Studio's own
converter writes it. Non-region results (choices, text) are not objects and are ignored; a region that has no box or
polygon (brush masks, ellipses, keypoints) makes its image lose an object, so the task is dropped and counted
(--keep-partial keeps it without them).

The image is `data.image` (`--data-key` for another name; without `image`, the one value naming an image file),
matched to a file under `--images` (default: the export's folder), searched recursively: an upload
(`/data/upload/<project>/<8 hex>-<name>`) by its stored name, then by the name without Label Studio's prefix (also
as Label Studio stores it: `my photo (1).jpg` as `my_photo_1.jpg`) unless two uploads share it; a local-storage path
(`/data/local-files/?d=`) and a cloud or web URL (`s3://bucket/cam1/0001.jpg`) by their path. A file matches only
where the paths agree (its path under `--images` ends the reference's, or the reference's ends the file's), so a task
of `cam1/0001.jpg` is never given `cam2/0001.jpg`. A task whose image is not found, has no
annotation (or only cancelled ones; legacy `completions` count) or was rotated in the editor (`image_rotation`) is
skipped and counted. Of several annotations, the one marked `ground_truth` is used, else the first (counted).
"""
from __future__ import annotations

import contextlib
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
    convert,
    coordinates,
    geometry_record,
    image_objects,
    images_folder,
    parser,
    polygon_object,
    run,
    stored_size,
    stream_json_array,
)

IMAGE_SUFFIXES = {'.jpg', '.jpeg', '.png', '.bmp', '.gif', '.tif', '.tiff', '.webp'}
UPLOAD_PREFIX = re.compile(r'^[0-9a-f]{8}-')
"""Label Studio stores an upload as ``<first 8 hex digits of a uuid4>-<original name>``."""
NOT_REGIONS = {None, 'choices', 'textarea', 'rating', 'number', 'datetime', 'taxonomy', 'pairwise', 'ranker',
               'relation'}
"""Results that annotate the task, not a region of its image."""


class ImageIndex:
    """The files under ``--images`` by name, for matching a task's image reference.

    A file matches a reference only where their paths agree: the file's path under ``--images`` is the end of the
    reference's path (``--images`` holds the referenced tree, or a folder of it), or the reference's path is the end
    of the file's (``--images`` lies inside the referenced tree). Names alone never match across folders: a task of
    ``cam1/0001.jpg`` is never given ``cam2/0001.jpg``. An upload (``<8 hex>-<name>``) may also match a file of its
    original name anywhere under --images, unless two uploads in the export share that name (``claim``): then which
    photo is which is unknown."""

    def __init__(self, folder: Path):
        self.folder = folder.resolve()
        self.by_name: dict[str, list[Path]] = defaultdict(list)
        for path in self.folder.rglob('*'):
            if path.is_file():
                self.by_name[path.name].append(path)
                if stored_name(path.name) != path.name:
                    self.by_name[stored_name(path.name)].append(path)
        self._seen: dict[str, tuple[Path, str | None] | Skip] = {}
        self._uploads: dict[Path, set[str]] = defaultdict(set)
        """Files reached by an upload's original name -> the uploads (stored names) that reach them."""

    def _matching(self, folders: tuple[str, ...], name: str) -> list[Path]:
        """Files found by ``name`` whose folders agree with the reference's ``folders``: the file's folders under
        --images end the reference's, or the reference's end the file's. A reference without folders (a bare name)
        says nothing about them: every file of that name matches."""
        found = []
        for path in self.by_name.get(name, []):
            under = path.parent.relative_to(self.folder).parts
            inside = bool(folders) and path.parent.parts[-len(folders):] == folders
            if not folders or not under or folders[-len(under):] == under or inside:
                found.append(path)
        return sorted(set(found))

    def _resolve(self, reference: str) -> tuple[Path, str | None]:
        """(the file, the upload's stored name when it was reached by its original name) or ``Skip``."""
        url = urlparse(reference)
        uploaded = not url.scheme and url.path.startswith('/data/upload/')
        if url.path.startswith('/data/local-files/') and 'd' in parse_qs(url.query):
            parts = tuple(p for p in parse_qs(url.query)['d'][0].replace('\\', '/').split('/') if p)
        else:  # an upload's URL /data/upload/<project>/... is <data dir>/media/upload/<project>/... on disk
            path = url.path.removeprefix('/data') if uploaded else url.path
            parts = tuple(unquote(p) for p in path.split('/') if p)
        if not parts:
            raise Skip(f'image reference without a file name: {reference:.80}')
        name = parts[-1]
        candidates = [(name, None)]
        if uploaded:
            original = UPLOAD_PREFIX.sub('', name)
            candidates += [(original, name), (stored_name(original), name)] if original != name else []
        # An upload's stored name (with its uuid prefix) names one file wherever it was copied, and its original
        # lives anywhere: for them the name is all there is. Other references' folders must agree.
        folders = () if uploaded else parts[:-1]
        for candidate, upload in candidates:
            found = self._matching(folders, candidate)
            if len(found) > 1:
                raise Skip(f'image {"/".join(parts)} matches {len(found)} files under --images ({found[0]}, '
                           f'{found[1]}); point --images at the folder that holds this one')
            if found:
                return found[0], upload
        raise Skip(f'image not found under --images: {"/".join(parts)} (a file matches where its path under '
                   '--images ends the reference\'s path)')

    def _resolved(self, reference: str) -> tuple[Path, str | None] | Skip:
        """``_resolve`` once per reference: ``claim`` and ``find`` both ask for every task's."""
        if reference not in self._seen:
            try:
                self._seen[reference] = self._resolve(reference)
            except Skip as exc:
                self._seen[reference] = exc
        return self._seen[reference]

    def claim(self, reference: str) -> None:
        """Note a task's reference before any is converted, so that two uploads sharing an original name are
        found out whatever their order."""
        resolved = self._resolved(reference)
        if not isinstance(resolved, Skip) and resolved[1] is not None:
            self._uploads[resolved[0]].add(resolved[1])

    def find(self, reference: str) -> Path:
        """The file a task's image reference names (``Skip`` when there is none, or it is not known which)."""
        resolved = self._resolved(reference)
        if isinstance(resolved, Skip):
            raise resolved
        path, upload = resolved
        if upload is not None and len(uploads := sorted(self._uploads[path])) > 1:
            raise Skip(f'uploads {uploads[0]} and {uploads[1]} have the same original name {path.name}, so which '
                       'photo it is is unknown; point --images at the uploaded files (with their prefixes)')
        return path


def stored_name(name: str) -> str:
    """The name Label Studio stores an upload under (Django's ``get_valid_name``: spaces become underscores, other
    characters that are not word characters, dots or dashes are dropped), so ``my photo (1).jpg`` is found as the
    upload ``<8 hex>-my_photo_1.jpg``."""
    return re.sub(r'(?u)[^-\w.]', '', name.strip().replace(' ', '_'))


def chosen_annotation(task: dict[str, Any], report: Report) -> list[dict[str, Any]]:
    """The results of the task's annotation: the ground-truth one, else the first that was not cancelled."""
    annotations = task.get('annotations') or task.get('completions') or []  # `completions`: exports before 1.0
    kept = [a for a in annotations if isinstance(a, dict) and not a.get('was_cancelled')]
    if not kept:
        only = ' (it has predictions, which are not ground truth)' if task.get('predictions') else ''
        raise Skip(f'task without annotations (none, or all cancelled){only}')
    if len(kept) > 1:
        truth = [a for a in kept if a.get('ground_truth')]
        report.notes['task with several annotations: the ' + ('ground truth' if truth else 'first') + ' used'] += 1
        kept = truth or kept
    return kept[0].get('result') or []


def regions(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The task's results with a `<Rectangle>` / `<Polygon>` result and the `<Labels>` result of the same region
    (same `id`) merged into one, as Label Studio's own converter reads them; results without an id stay apart."""
    merged: dict[Any, dict[str, Any]] = {}
    out = []
    for n, result in enumerate(results):
        key = result.get('id', ('no id', n))
        if key not in merged:
            merged[key] = {**result, 'types': [], 'value': {}}
            out.append(merged[key])
        merged[key]['types'].append(result.get('type'))
        merged[key]['value'].update(result.get('value') or {})
    return out


def region_object(region: dict[str, Any], width: int, height: int, report: Report) -> list[dict[str, Any]] | None:
    """A region as contract objects, one per label (None: not a region); percent -> pixels, rotation honoured."""
    types, value = set(region['types']), region['value']
    if types <= NOT_REGIONS:
        return None
    if types & {'polygonlabels', 'polygon'}:
        kind = 'polygon'
    elif types & {'rectanglelabels', 'rectangle'} or ('labels' in types and 'width' in value):
        kind = 'rectangle'
    else:
        raise Skip(f'{"/".join(sorted(t for t in types if t))} region: no box or polygon to convert')
    labels = value.get(f'{kind}labels') or value.get('labels') or []
    if not labels:
        raise Skip(f'{kind} region without a label')
    if kind == 'polygon':
        points = [v * (width if i % 2 == 0 else height) / 100
                  for point in value.get('points') or [] for i, v in enumerate(coordinates(point, 'polygon point', 2))]
        return [polygon_object(str(label), points, width, height, report) for label in labels]
    x, y, w, h = coordinates([value.get(k) for k in ('x', 'y', 'width', 'height')], 'rectangle x, y, width, height')
    x, y, w, h = x * width / 100, y * height / 100, w * width / 100, h * height / 100
    rotation = coordinates([value.get('rotation') or 0], 'rectangle rotation')[0]
    if not rotation % 360:  # a negative width or height is drawn leftwards or upwards
        corners = [min(x, x + w), min(y, y + h), max(x, x + w), max(y, y + h)]
        return [box_object(str(label), corners, width, height, report) for label in labels]
    angle = math.radians(rotation)
    cos, sin = math.cos(angle), math.sin(angle)  # clockwise on screen: y points down
    report.notes['rotated rectangle written as a polygon'] += len(labels)
    corners = ((0, 0), (w, 0), (w, h), (0, h))
    points = [c for dx, dy in corners for c in (x + dx * cos - dy * sin, y + dx * sin + dy * cos)]
    return [polygon_object(str(label), points, width, height, report) for label in labels]


def check_view(results: list[dict[str, Any]], width: int, height: int) -> None:
    """The regions must be of the stored image: the size Label Studio saw, and no rotation in the editor."""
    for result in results:
        seen = (result.get('original_width'), result.get('original_height'))
        if seen != (None, None) and seen != (width, height):
            raise Skip(f'Label Studio saw the image as {seen[0]}x{seen[1]}, the file is {width}x{height}')
        if result.get('image_rotation'):
            raise Skip(f'the image was rotated by {result["image_rotation"]} degrees in the editor')


def image_reference(data: dict[str, Any], key: str | None) -> str:
    """The task's image: ``data[key]``, else ``data.image``, else the one value that names an image file."""
    if key is None and 'image' not in data:
        found = [k for k, v in data.items() if isinstance(v, str) and Path(urlparse(v).path).suffix.lower() in
                 IMAGE_SUFFIXES]
        if len(found) != 1:
            raise Skip(f'task data has no `image` (keys: {", ".join(data) or "none"}); pass --data-key, the '
                       'name after `$` in the project\'s <Image value="$..."/>')
        key = found[0]
    value = data.get(key or 'image')
    if not isinstance(value, str) or not value:
        raise Skip(f'task without `data.{key or "image"}`')
    return value


def convert_file(export: Path, out: Path, images_dir: Path | None = None, dataset: str | None = None,
                 keep_partial: bool = False, data_key: str | None = None) -> Report:
    index = ImageIndex(images_folder(images_dir, export))
    report = Report()

    def convert_one(task: Any) -> dict[str, Any]:
        if not isinstance(task, dict) or 'data' not in task:
            if isinstance(task, dict) and 'image' in task:
                raise ConversionError(f'{export}: this is a JSON-MIN export (tasks without `annotations`); export '
                                      'the project as JSON instead; nothing was written')
            raise Skip(f'not a Label Studio task (no `data`): {str(task):.60}')
        reference = image_reference(task['data'] if isinstance(task['data'], dict) else {}, data_key)
        results = chosen_annotation(task, report)
        image = index.find(reference)
        width, height = stored_size(image, str(image))
        results = [r for r in results if isinstance(r, dict)]
        check_view(results, width, height)
        objects = image_objects(regions(results), lambda r: region_object(r, width, height, report), keep_partial,
                                report)
        return geometry_record(image, out, width, height, objects, dataset or 'labelstudio')

    for task in stream_json_array(export):  # first the references alone: see ImageIndex.claim
        with contextlib.suppress(Skip, AttributeError, KeyError, TypeError):  # the task's own error comes later
            index.claim(image_reference(task['data'], data_key))
    items = ((f'task {task.get("id", i) if isinstance(task, dict) else i}', task)
             for i, task in enumerate(stream_json_array(export)))
    return convert(items, convert_one, out, desc='label studio tasks', inputs=[export], report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help="Label Studio's JSON export")
    p.add_argument('--images', type=Path, help="the folder holding the task images (default: the export's folder)")
    p.add_argument('--data-key', help='the task data key of the image (default: image, or the one image value)')
    add_detection_flags(p, 'labelstudio')
    args = p.parse_args(argv)
    convert_file(args.input, args.out, args.images, args.dataset, args.keep_partial, args.data_key)


if __name__ == '__main__':
    sys.exit(run(main))
