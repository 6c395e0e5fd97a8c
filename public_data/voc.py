"""Convert a Pascal VOC folder (VOC2007, VOC2012, or any export in its layout) into geometry records.

    python -m public_data.voc --input VOCdevkit/VOC2012 --split train --out voc_train.jsonl

`--input` is the `VOC<year>` folder: `ImageSets/Main/<split>.txt` lists the image ids, `Annotations/<id>.xml` holds
each image's objects, `JPEGImages/<id>.jpg` the images (`--images DIR` elsewhere; the extension of `<filename>` when
it has one). The id names the image, as the devkit, torchvision and detectron2 read it: a `<filename>` left over
from another image is counted, not followed. VOC corners are 1-based and inclusive
(`xmin` 1 is the first pixel column, `xmax` the last one covered), so the box in the contract's pixel edges is
[xmin - 1, ymin - 1, xmax, ymax]: a box over a whole 500-pixel-wide image is xmin 1, xmax 500 -> [0, 500].
Part boxes (`<part>` inside a person) are not objects of their own and are not kept.

`difficult` objects are kept as ordinary objects and counted in the summary: the model should see every object in
its answer, and `src.eval` scores them like the rest (stricter than VOC's own metric, which ignores them).
`--drop-difficult` drops images that hold one (counted; with --keep-partial, only those objects). An XML that does not
parse, or an object without a name or box, is malformed input: one error with the file, and nothing is written.
"""
from __future__ import annotations

import math
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

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
    read_text,
    run,
    stored_size,
)


def read_annotation(path: Path) -> ET.Element:
    """The parsed XML (``ConversionError`` with line and column when it does not parse)."""
    try:
        return ET.parse(path).getroot()
    except ET.ParseError as exc:
        line, column = exc.position
        raise ConversionError(f'{path}:{line}:{column}: not valid XML ({exc}); nothing was written') from None


def number(element: ET.Element, tag: str, source: Path) -> float:
    """The number in ``element``'s child ``tag`` (VOC writes integers; some exporters write decimals)."""
    text = element.findtext(tag)
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not math.isfinite(value):
        raise ConversionError(f'{source}: <{element.tag}><{tag}> must be a number, got {text!r}; nothing was '
                              'written')
    return value


def voc_objects(root: ET.Element, source: Path) -> list[tuple[str, list[float], bool]]:
    """(name, [xmin, ymin, xmax, ymax] as written, difficult) of each ``<object>`` (its own box, not its parts)."""
    objects = []
    for obj in root.findall('object'):
        name, box = (obj.findtext('name') or '').strip(), obj.find('bndbox')
        if not name or box is None:
            raise ConversionError(f'{source}: an <object> without a <name> or a <bndbox>; nothing was written')
        corners = [number(box, tag, source) for tag in ('xmin', 'ymin', 'xmax', 'ymax')]
        objects.append((name, corners, (obj.findtext('difficult') or '0').strip() == '1'))
    return objects


def convert_file(voc: Path, split: str, out: Path, images_dir: Path | None = None, dataset: str | None = None,
                 drop_difficult: bool = False, keep_partial: bool = False) -> Report:
    ids_file = voc / 'ImageSets' / 'Main' / f'{split}.txt'
    if not (voc / 'Annotations').is_dir():
        nested = sorted(p.name for p in voc.glob('VOC*') if (p / 'Annotations').is_dir()) if voc.is_dir() else []
        hint = f'; it holds {", ".join(nested)}: pass one of them' if nested else ''
        raise ConversionError(f'{voc} has no Annotations/ folder: --input is the VOC<year> folder{hint}')
    if not ids_file.is_file():
        splits = sorted(p.stem for p in (voc / 'ImageSets' / 'Main').glob('*.txt') if '_' not in p.stem)
        raise ConversionError(f'{ids_file} does not exist; splits here: {", ".join(splits) or "none"}')
    images_dir = images_dir or voc / 'JPEGImages'
    if not images_dir.is_dir():
        raise ConversionError(f'images folder {images_dir} does not exist; pass --images DIR')
    ids = [line.split()[0] for line in read_text(ids_file).splitlines() if line.strip()]
    report = Report()

    def convert_one(image_id: str) -> dict[str, Any]:
        xml = voc / 'Annotations' / f'{image_id}.xml'
        if not xml.is_file():
            raise Skip(f'annotation file not found: {xml}')
        root = read_annotation(xml)
        written = Path((root.findtext('filename') or '').strip())
        if written.name and written.stem != image_id:
            report.notes['<filename> other than the image id (the id names the image, as the devkit reads it)'] += 1
        image = images_dir / f'{image_id}{written.suffix or ".jpg"}'
        if not image.is_file():
            raise Skip(f'image file not found: {image}')
        width, height = stored_size(image, str(image))
        size = root.find('size')
        written = (number(size, 'width', xml), number(size, 'height', xml)) if size is not None else (0, 0)
        if written != (0, 0) and written != (width, height):
            raise Skip(f'<size> {written[0]:g}x{written[1]:g} differs from the image file, which is {width}x{height}')

        def to_object(obj: tuple[str, list[float], bool]) -> dict[str, Any] | None:
            name, (xmin, ymin, xmax, ymax), difficult = obj
            if difficult and drop_difficult:
                raise Skip('difficult object (--drop-difficult)')
            if difficult:
                report.notes['difficult object kept'] += 1
            return box_object(name, [xmin - 1, ymin - 1, xmax, ymax], width, height, report)

        objects = image_objects(voc_objects(root, xml), to_object, keep_partial, report)
        return geometry_record(image, out, width, height, objects, dataset or voc.resolve().name)

    return convert(((f'{split} id {i}', i) for i in ids), convert_one, out, desc=f'voc {split}', inputs=[ids_file],
                   total=len(ids), report=report)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='the VOC<year> folder')
    p.add_argument('--split', default='train', help='an ImageSets/Main list: train, val, trainval, test')
    p.add_argument('--images', type=Path, help='the images folder (default: JPEGImages/ of --input)')
    p.add_argument('--drop-difficult', action='store_true',
                   help='drop images holding `difficult` objects (default: keep them as ordinary objects)')
    add_detection_flags(p, 'the VOC<year> folder\'s name')
    args = p.parse_args(argv)
    convert_file(args.input, args.split, args.out, args.images, args.dataset, args.drop_difficult, args.keep_partial)


if __name__ == '__main__':
    sys.exit(run(main))
