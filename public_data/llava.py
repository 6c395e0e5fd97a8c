"""Convert LLaVA-style `conversations` JSON into chat records.

    python -m public_data.llava --input llava_v1_5_mix665k.json --out llava.jsonl [--images data/]

Each item `{"image": "coco/train2017/x.jpg", "conversations": [{"from": "human", "value": "<image>\\nWhat is ..."},
{"from": "gpt", "value": "..."}]}` becomes `{"messages": [...], "images": [...]}` with `<image>` placeholders kept;
`"video": "clip.mp4"` items (LLaVA-Video / LLaVA-NeXT) become `videos` with their `<video>` placeholder (an `<image>`
placeholder of a video item, as LLaVA-Video writes it, is read as `<video>` and counted). Placeholders the text does
not place go first in the first user turn. Media paths
are relative to the input file's folder unless --images says otherwise. Text-only items stay text-only. Items whose
media file is missing, whose placeholders do not match the media count, or that do not end with a `gpt` turn are
skipped and reported. The file is a JSON array, read as a stream, or JSON Lines (`.jsonl`, or a `.json` file of
one item per line), as LLaVA-NeXT reads both.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .common import (
    Report,
    Skip,
    chat_record,
    convert,
    images_folder,
    json_items,
    parser,
    run,
)

ROLES = {'human': 'user', 'user': 'user', 'gpt': 'assistant', 'assistant': 'assistant', 'system': 'system'}
MEDIA_KEYS = {'image': 'images', 'video': 'videos'}  # LLaVA's item key -> the record field
def convert_item(item: dict[str, Any], images_dir: Path, out: Path, report: Report) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Skip(f'an item must be an object, got {type(item).__name__}')
    turns = item.get('conversations')
    if not isinstance(turns, list) or not turns:
        raise Skip(f'no `conversations` (the item\'s keys: {", ".join(map(str, item)) or "none"}; LLaVA data is a list '
                   'of items, or JSON Lines of them)')
    messages = []
    for turn in turns:
        role = ROLES.get(turn.get('from')) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get('value'), str):
            raise Skip(f'turn with unknown speaker {turn.get("from") if isinstance(turn, dict) else turn!r}')
        messages.append({'role': role, 'content': turn['value']})
    media = {field: [v] if isinstance(v, str) else v for key, field in MEDIA_KEYS.items() if (v := item.get(key))}
    texts = ''.join(m['content'] for m in messages)
    if media.get('videos') and not media.get('images') and '<video>' not in texts and '<image>' in texts:
        for message in messages:  # LLaVA-Video marks its video with LLaVA's <image>
            message['content'] = message['content'].replace('<image>', '<video>')
        report.notes['<image> of a video item read as <video>'] += 1
    return chat_record(messages, media, images_dir, out)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='the LLaVA JSON array')
    p.add_argument('--images', type=Path, help='the folder media paths are relative to (default: the input\'s)')
    args = p.parse_args(argv)
    media_dir = images_folder(args.images, args.input)
    items = ((f'{where} ({item.get("id", "?") if isinstance(item, dict) else "?"})', item)
             for where, item in json_items(args.input))
    report = Report()
    convert(items, lambda item: convert_item(item, media_dir, args.out, report), args.out, desc='llava',
            inputs=[args.input], report=report)


if __name__ == '__main__':
    sys.exit(run(main))
