"""Convert RefCOCO / RefCOCO+ / RefCOCOg referring expressions into grounding chat records.

    python -m public_data.refcoco --refs refcoco/refs(unc).p --instances refcoco/instances.json \\
        --images train2014 --split val --out refcoco_val.jsonl

`--refs` is the usual refs pickle or a JSON list of the same dicts (`ref_id`, `ann_id`, `image_id`, `split`,
`sentences: [{"sent": ...}]`); only open a pickle you trust. Boxes come from the instances file. Each expression
becomes one record: the user asks for it (`--prompt`, with `{expression}`), the assistant answers
`[{"desc": expression, "bbox_2d": [x1, y1, x2, y2]}]` in 0-1000 coordinates (Qwen3-VL's convention), or in the
convention of the training config given with `--config` (Qwen2.5-VL: pixels of the image the model receives at that
config's `template.max_pixels`): a chat record trains as written, so its numbers must already be the model's. Refs
of other splits are left out; refs whose annotation or image is missing, whose image does not open, has samples wider
than 8 bits, an EXIF rotation or another size than the instances file says, or whose box has no area are skipped and
reported; boxes that cross the image edge are clamped and empty sentences left out, both counted.
"""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path
from typing import Any

from src.datasets.builders.coords import Coords

from .common import (
    ConversionError,
    Report,
    Skip,
    annotated_size,
    box_object,
    convert,
    coordinates,
    parser,
    relative_image,
    run,
    stream_json_array,
)

DEFAULT_PROMPT = 'Locate "{expression}" in the image and give its bounding box as JSON.'


def load_refs(path: Path) -> list[dict[str, Any]]:
    if path.suffix == '.p':
        try:
            with open(path, 'rb') as f:
                # the published files are Python 2 pickles: their byte strings are UTF-8 text
                return pickle.load(f, encoding='utf-8')  # noqa: S301 - the published RefCOCO format
        except UnicodeDecodeError as exc:
            raise ConversionError(f'{path}: a string in the pickle is not UTF-8 ({exc}); nothing was written') from None
        except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError) as exc:
            raise ConversionError(f'{path}: not a readable refs pickle ({type(exc).__name__}: {exc}); nothing was '
                                  'written') from None
    return list(stream_json_array(path))


def convert_ref(ref: dict[str, Any], boxes: dict, images: dict, images_dir: Path, out: Path,
                prompt: str, report: Report, coords: Coords = Coords('norm1000')) -> list[dict[str, Any]]:
    ann = boxes.get(ref.get('ann_id'))
    image = images.get(ref.get('image_id'))
    if ann is None or image is None:
        raise Skip('annotation or image not in the instances file')
    path = images_dir / image['file_name']
    if not path.is_file():
        raise Skip(f'image file not found: {path}')
    width, height = annotated_size(path, image['width'], image['height'], 'the instances file says')
    x, y, w, h = coordinates(ann, 'bbox', 4)
    corners = box_object('', [x, y, x + w, y + h], width, height, report)['bbox_2d']
    box = coords.to_model(corners, width, height)
    records = []
    for sentence in ref.get('sentences') or []:
        text = (sentence.get('sent') or '').strip()
        if not text:
            report.notes['empty sentence left out'] += 1
            continue
        answer = json.dumps([{'desc': text, 'bbox_2d': box}], ensure_ascii=False)
        records.append({'messages': [
            {'role': 'user', 'content': [{'type': 'image', 'image': relative_image(path, out)},
                                         {'type': 'text', 'text': prompt.format(expression=text)}]},
            {'role': 'assistant', 'content': answer},
        ], 'dataset': 'refcoco'})
    if not records:
        raise Skip('no non-empty sentence')
    return records


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--refs', type=Path, required=True, help='refs(unc).p / refs(umd).p, or the same as JSON')
    p.add_argument('--instances', type=Path, required=True, help='the instances.json shipped with the refs')
    p.add_argument('--images', type=Path, required=True, help='COCO train2014 image folder')
    p.add_argument('--split', help='keep only refs of this split (train, val, testA, ...)')
    p.add_argument('--prompt', default=DEFAULT_PROMPT, help='user prompt with an {expression} field')
    p.add_argument('--config', type=Path, help='the training config the records are for: answers in its model\'s '
                                               'coordinates (default: 0-1000, Qwen3-VL\'s)')
    args = p.parse_args(argv)
    coords = Coords('norm1000')
    if args.config is not None:
        from src.config import ConfigError, load_and_validate
        from src.datasets.builders import coords_of

        try:
            coords = coords_of(load_and_validate(args.config))
        except ConfigError as exc:
            raise ConversionError(f'--config {args.config}: {exc}') from None
    boxes = {a['id']: a['bbox'] for a in stream_json_array(args.instances, 'annotations.item')}
    images = {i['id']: i for i in stream_json_array(args.instances, 'images.item')}
    if not args.images.is_dir():
        raise ConversionError(f'images folder {args.images} does not exist')
    all_refs = load_refs(args.refs)
    refs = [r for r in all_refs if args.split is None or r.get('split') == args.split]
    if not refs:
        splits = sorted({str(r.get('split')) for r in all_refs})
        raise ConversionError(f'{args.refs}: no refs of split {args.split!r}; the file has '
                              f'{", ".join(splits) or "none"}')
    items = ((f'ref {r.get("ref_id")}', r) for r in refs)
    report = Report()
    convert(items, lambda r: convert_ref(r, boxes, images, args.images, args.out, args.prompt, report, coords),
            args.out, desc='refcoco', inputs=[args.refs, args.instances], total=len(refs), report=report)


if __name__ == '__main__':
    sys.exit(run(main))
