"""Convert a Hugging Face `datasets` object-detection set, saved as parquet, into geometry records.

    python -m public_data.hf_dataset --input cppe-5/ --box-format xywh --images cppe5_images --out cppe5.jsonl

`--input` is one parquet file, or a folder as `push_to_hub` / `to_parquet` leave it: `data/<split>-*.parquet`,
`<split>-*.parquet`, `<split>/*.parquet` or `<split>.parquet`. The parquet's own metadata (the `huggingface` key
`datasets` writes) says which column is the `Image` and the class names of a `ClassLabel` category; the objects column
(`--objects`, default `objects`) holds a box field (`--bbox-field`, default `bbox`) and a category field
(`--category-field`, default the first of category, label, labels, category_id, class), either as a dict of lists
(`Sequence({...})`) or a list of dicts (`[{...}]`). A string category is its own name; an integer one without
`ClassLabel` names needs `--names a,b,c`.

Boxes are in pixels, but the metadata does not say which corners: `--box-format xywh` is COCO's [x, y, width,
height] (cppe-5, most COCO-derived sets), `xyxy` is [x1, y1, x2, y2] (detection-datasets/coco). Embedded image bytes
are written under `--images` (by the stored file name, else `<split>-<row>.<ext>`); a file already there is reused
only when it holds the same bytes, never overwritten. Images stored by path are looked for under `--images`, then
beside the parquet file. Rows whose `width` / `height` disagree with their image are
skipped and counted.
"""
from __future__ import annotations

import io
import json
import sys
from pathlib import Path
from typing import Any, Iterator

import pyarrow.parquet as pq
from PIL import Image

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
    parser,
    run,
    stored_size,
)

CATEGORY_FIELDS = ('category', 'label', 'labels', 'category_id', 'class')


def split_files(source: Path, split: str) -> list[Path]:
    """The parquet files of ``split`` under ``source`` (a file is its own split)."""
    if source.is_file():
        return [source]
    if not source.is_dir():
        raise ConversionError(f'{source} does not exist')
    for folder in (source / 'data', source):
        for pattern in (f'{split}-*.parquet', f'{split}/*.parquet', f'{split}.parquet', f'*/{split}/*.parquet'):
            if files := sorted(folder.glob(pattern)):
                return files
    found = sorted({split_of(p) for p in source.rglob('*.parquet')})
    if not found and (source / 'dataset_info.json').is_file():
        raise ConversionError(f'{source} is a `save_to_disk` folder (arrow files); write it as parquet first: '
                              "datasets.load_from_disk(...).to_parquet('train.parquet')")
    raise ConversionError(f'{source}: no parquet files for split {split!r} (splits found: '
                          f'{", ".join(found) or "none"})')


def split_of(path: Path) -> str:
    """The split a parquet file belongs to by its name: `train-00000-of-00002.parquet`, `val.parquet`, or
    `train/0000.parquet` (the Hub's parquet conversion)."""
    stem = path.stem.split('-')[0]
    return path.parent.name if stem.isdigit() else stem


def features(path: Path) -> dict[str, Any]:
    """The `datasets` features stored in a parquet file's schema metadata ({} when it has none)."""
    try:
        metadata = pq.read_schema(path).metadata or {}
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a file that is not parquet
        raise ConversionError(f'{path}: not a parquet file ({exc}); nothing was written') from None
    if b'huggingface' not in metadata:
        return {}
    return json.loads(metadata[b'huggingface']).get('info', {}).get('features', {})


def object_fields(feature: dict[str, Any]) -> dict[str, Any]:
    """The per-object fields of an objects feature: ``Sequence({...})`` / dict of ``List``s, or ``List({...})``."""
    inner = feature.get('feature') if feature.get('_type') in ('Sequence', 'List') else feature
    if isinstance(inner, dict) and inner.get('_type') is None:
        return {k: (v.get('feature', v) if isinstance(v, dict) and v.get('_type') in ('Sequence', 'List') else v)
                for k, v in inner.items()}
    return {}


def arrow_fields(path: Path, objects: str) -> dict[str, Any]:
    """The per-object field names from the parquet schema itself (a file without `datasets` metadata)."""
    import pyarrow as pa

    schema = pq.read_schema(path)
    if objects not in schema.names:
        return {}
    kind = schema.field(objects).type
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        kind = kind.value_type
    return {kind.field(i).name: {} for i in range(kind.num_fields)} if pa.types.is_struct(kind) else {}


class Layout:
    """Where a parquet row keeps its image, objects, boxes and class names (from the metadata and the flags)."""

    def __init__(self, feats: dict[str, Any], path: Path, objects: str, bbox: str, category: str | None,
                 names: list[str] | None):
        images = [k for k, v in feats.items() if isinstance(v, dict) and v.get('_type') == 'Image']
        self.image = images[0] if images else 'image'
        self.objects, self.bbox = objects, bbox
        columns = list(feats) or pq.read_schema(path).names
        if objects not in columns:
            raise ConversionError(f'{path}: no `{objects}` column (columns: {", ".join(columns)}); pass --objects')
        fields = object_fields(feats.get(objects, {})) or arrow_fields(path, objects)
        if fields and bbox not in fields:
            raise ConversionError(f'{path}: `{objects}` has no `{bbox}` field (fields: {", ".join(fields)}); pass '
                                  '--bbox-field')
        self.category = category or next((f for f in CATEGORY_FIELDS if f in fields), None)
        if self.category is None:
            raise ConversionError(f'{path}: no category field in `{objects}` (fields: {", ".join(fields) or "?"}); '
                                  'pass --category-field')
        label = fields.get(self.category, {})
        self.names = names or (label.get('names') if isinstance(label, dict) else None)

    def name(self, value: Any) -> str:
        if isinstance(value, str):
            return value
        if self.names is None:
            raise ConversionError(f'category {value!r} is a number and the parquet has no ClassLabel names for '
                                  f'`{self.category}`; pass --names a,b,c')
        if not isinstance(value, int) or isinstance(value, bool):
            raise Skip(f'category {value!r} is not a class index')
        if not 0 <= value < len(self.names):
            raise Skip(f'category {value!r} outside the {len(self.names)} class names')
        return self.names[value]

    def rows(self, row: dict[str, Any]) -> list[tuple[Any, Any]]:
        """(box, category) per object of a row, from a dict of lists or a list of dicts."""
        objects = row.get(self.objects)
        if isinstance(objects, dict):
            boxes, categories = objects.get(self.bbox) or [], objects.get(self.category) or []
            if len(boxes) != len(categories):
                raise Skip(f'`{self.bbox}` has {len(boxes)} boxes and `{self.category}` {len(categories)} categories')
            return list(zip(boxes, categories))
        return [(o.get(self.bbox), o.get(self.category)) for o in objects or [] if isinstance(o, dict)]


class ImageWriter:
    """Writes embedded images under ``--images``, never over a different file."""

    def __init__(self, folder: Path, split: str):
        self.folder, self.split, self.used = folder, split, set()

    def write(self, data: bytes, stored_name: str | None, row: int) -> Path:


        name = Path(stored_name).name if stored_name else ''
        if not name or name in self.used:
            with Image.open(io.BytesIO(data)) as image:
                suffix = {'JPEG': '.jpg'}.get(image.format, f'.{(image.format or "img").lower()}')
            name = f'{self.split}-{row:06d}{suffix}'
        self.used.add(name)
        path = self.folder / name
        if path.exists():
            if path.read_bytes() != data:
                raise ConversionError(f'{path} already exists with other content; write the images into an empty '
                                      'folder (--images); nothing of yours was overwritten')
            return path
        self.folder.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f'.{name}.tmp')
        temporary.write_bytes(data)
        temporary.replace(path)
        return path


def iter_rows(files: list[Path]) -> Iterator[tuple[str, tuple[int, dict[str, Any]]]]:
    """(where, (row number over all files, row)) of every row, read a batch at a time."""
    number = 0
    for path in files:
        for b, batch in enumerate(pq.ParquetFile(path).iter_batches(batch_size=64)):
            for i, row in enumerate(batch.to_pylist()):
                yield f'{path.name} row {b * 64 + i}', (number, row)
                number += 1


def dataset_name(source: Path, split: str) -> str:
    """The dataset's own name, for the records' `dataset` field (per-dataset telemetry): the folder that holds the
    splits (`cppe-5/` of `cppe-5/data/train-*.parquet`), never the split's name, which would log `train_loss` beside
    the trainer's own and name the validation records another dataset."""
    folder = source.resolve() if source.is_dir() else source.resolve().parent
    while folder.name in ('data', split) and folder.parent != folder:
        folder = folder.parent
    return folder.name or 'hf_dataset'


def convert_file(source: Path, split: str | None, out: Path, images_dir: Path, box_format: str | None,
                 objects: str = 'objects', bbox: str = 'bbox', category: str | None = None,
                 names: list[str] | None = None, dataset: str | None = None, keep_partial: bool = False) -> Report:

    split = split or (split_of(source) if source.is_file() else 'train')
    files = split_files(source, split)
    if box_format not in ('xywh', 'xyxy'):
        raise ConversionError('the parquet metadata does not say how boxes are written: pass --box-format xywh '
                              "(COCO's x, y, width, height: cppe-5 and most COCO-derived sets) or xyxy (corners)")
    layout = Layout(features(files[0]), files[0], objects, bbox, category, names)
    writer = ImageWriter(images_dir, split)
    name = dataset_name(source, split)
    report = Report()

    def convert_one(item: tuple[int, dict[str, Any]]) -> dict[str, Any]:
        number, row = item
        cell = row.get(layout.image)
        if not isinstance(cell, dict) or not (cell.get('bytes') or cell.get('path')):
            raise Skip(f'no image in column `{layout.image}`')
        if cell.get('bytes'):  # read before it is written: an image that does not open leaves no file behind
            width, height = stored_size(cell['bytes'], f'the image of row {number}')
            image = writer.write(cell['bytes'], cell.get('path'), number)
        else:
            stored = Path(cell['path'])
            candidates = [stored] if stored.is_absolute() else [images_dir / stored, files[0].parent / stored]
            image = next((c for c in candidates if c.is_file()), candidates[0])
            if not image.is_file():
                raise Skip(f'image file not found: {" or ".join(map(str, candidates))}')
            width, height = stored_size(image, str(image))
        written = (row.get('width'), row.get('height'))
        if written != (None, None) and written != (width, height):
            raise Skip(f'`width` x `height` {written[0]}x{written[1]} differ from the image, which is '
                       f'{width}x{height}')

        def to_object(item: tuple[Any, Any]) -> dict[str, Any]:
            box, label = item
            x1, y1, a, b = coordinates(box, 'box', 4)
            corners = [x1, y1, x1 + a, y1 + b] if box_format == 'xywh' else [x1, y1, a, b]
            return box_object(layout.name(label), corners, width, height, report)

        objects_ = image_objects(layout.rows(row), to_object, keep_partial, report)
        return geometry_record(image, out, width, height, objects_, dataset or name)

    total = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    return convert(iter_rows(files), convert_one, out, desc=f'{split} rows', inputs=files, total=total,
                   report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='a parquet file or the folder holding the splits')
    p.add_argument('--split', help="the split to convert (default: a file's own, e.g. val for val.parquet; else train)")
    p.add_argument('--images', type=Path, required=True, help='where the embedded images are written')
    p.add_argument('--box-format', choices=['xywh', 'xyxy'], help='how the boxes are written (required)')
    p.add_argument('--objects', default='objects', help='the objects column (default objects)')
    p.add_argument('--bbox-field', default='bbox', help='the box field of an object (default bbox)')
    p.add_argument('--category-field', help='the category field of an object (default: category, label, ...)')
    p.add_argument('--names', help='class names, comma-separated, when the parquet has no ClassLabel names')
    add_detection_flags(p, "the dataset's folder name")
    args = p.parse_args(argv)
    convert_file(args.input, args.split, args.out, args.images, args.box_format, args.objects, args.bbox_field,
                 args.category_field, args.names.split(',') if args.names else None, args.dataset,
                 args.keep_partial)


if __name__ == '__main__':
    sys.exit(run(main))
