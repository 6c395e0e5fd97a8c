"""Convert LLaVA-style `conversations` JSON into chat records.

    python -m public_data.llava --input llava_v1_5_mix665k.json --images data/ --out llava.jsonl

Each item `{"image": "coco/train2017/x.jpg", "conversations": [{"from": "human", "value": "<image>\\nWhat is ..."},
{"from": "gpt", "value": "..."}]}` becomes `{"messages": [...], "images": [...]}` with `<image>` placeholders kept.
Text-only items (no `image`) stay text-only. Items whose image is missing, whose placeholders do not match the image
count, or that do not end with a `gpt` turn are skipped and reported. The JSON array is read as a stream.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import Skip, convert, parser, relative_image, stream_json_array

ROLES = {'human': 'user', 'user': 'user', 'gpt': 'assistant', 'assistant': 'assistant', 'system': 'system'}


def convert_item(item: dict[str, Any], images_dir: Path, out: Path) -> dict[str, Any]:
    turns = item.get('conversations')
    if not isinstance(turns, list) or not turns:
        raise Skip('no `conversations`')
    messages = []
    for turn in turns:
        role = ROLES.get(turn.get('from'))
        if role is None or not isinstance(turn.get('value'), str):
            raise Skip(f'turn with unknown speaker {turn.get("from")!r}')
        messages.append({'role': role, 'content': turn['value']})
    if messages[-1]['role'] != 'assistant':
        raise Skip('the last turn is not from gpt')
    images = item.get('image') or []
    images = [images] if isinstance(images, str) else images
    placeholders = sum(m['content'].count('<image>') for m in messages)
    if images and placeholders == 0:  # LLaVA puts the image first when the text does not say where
        messages[0]['content'] = '<image>\n' * len(images) + messages[0]['content']
        placeholders = len(images)
    if placeholders != len(images):
        raise Skip(f'{placeholders} <image> placeholders for {len(images)} images')
    paths = []
    for name in images:
        path = images_dir / name
        if not path.is_file():
            raise Skip(f'image file not found: {path}')
        paths.append(relative_image(path, out))
    record = {'messages': messages}
    if paths:
        record['images'] = paths
    return record


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='the LLaVA JSON array')
    p.add_argument('--images', type=Path, required=True, help='the folder image paths are relative to')
    args = p.parse_args(argv)
    items = ((f'item {i} ({item.get("id", "?")})', item) for i, item in enumerate(stream_json_array(args.input)))
    convert(items, lambda item: convert_item(item, args.images, args.out), args.out, desc='llava')


if __name__ == '__main__':
    main()
