"""Convert LLaVA-style `conversations` JSON into chat records.

    python -m public_data.llava --input llava_v1_5_mix665k.json --out llava.jsonl [--images data/]

Each item `{"image": "coco/train2017/x.jpg", "conversations": [{"from": "human", "value": "<image>\\nWhat is ..."},
{"from": "gpt", "value": "..."}]}` becomes `{"messages": [...], "images": [...]}` with `<image>` placeholders kept;
`"video": "clip.mp4"` items (LLaVA-Video / LLaVA-NeXT) become `videos` with their `<video>` placeholder. Media paths
are relative to the input file's folder unless --images says otherwise. Text-only items stay text-only. Items whose
media file is missing, whose placeholders do not match the media count, or that do not end with a `gpt` turn are
skipped and reported. The JSON array is read as a stream.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from .common import (
    Skip,
    check_output,
    convert,
    images_folder,
    parser,
    relative_image,
    run,
    stream_json_array,
)

ROLES = {'human': 'user', 'user': 'user', 'gpt': 'assistant', 'assistant': 'assistant', 'system': 'system'}
MEDIA = (('image', 'images', '<image>'), ('video', 'videos', '<video>'))  # item key, record field, placeholder


def chat_record(messages: list[dict[str, Any]], media: dict[str, list[str]], media_dir: Path, out: Path,
                prepend: bool = True) -> dict[str, Any]:
    """A chat record from text messages and media file names (relative to ``media_dir``): placeholders checked
    against the files (LLaVA puts them first when the text does not say where, ``prepend``), files checked to exist
    and written relative to ``out``."""
    if not messages or messages[-1]['role'] != 'assistant':
        raise Skip('the last turn is not the assistant answer')
    record: dict[str, Any] = {'messages': messages}
    for key, field, placeholder in MEDIA:
        names = media.get(field) or []
        count = sum(m['content'].count(placeholder) for m in messages)
        if names and count == 0 and prepend:
            messages[0]['content'] = f'{placeholder}\n' * len(names) + messages[0]['content']
            count = len(names)
        if count != len(names):
            raise Skip(f'{count} {placeholder} placeholders for {len(names)} {key}(s)')
        paths = []
        for name in names:
            if not isinstance(name, str) or not name:
                raise Skip(f'{key} entry must be a file name, got {name!r:.60}')
            if name.startswith(('http://', 'https://')):
                raise Skip(f'remote {key} URL (training reads local files only): {name:.80}')
            path = Path(name) if Path(name).is_absolute() else media_dir / name
            if not path.is_file():
                raise Skip(f'{key} file not found: {path}')
            paths.append(relative_image(path, out))
        if paths:
            record[field] = paths
    return record


def convert_item(item: dict[str, Any], images_dir: Path, out: Path) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Skip(f'an item must be an object, got {type(item).__name__}')
    turns = item.get('conversations')
    if not isinstance(turns, list) or not turns:
        raise Skip('no `conversations`')
    messages = []
    for turn in turns:
        role = ROLES.get(turn.get('from')) if isinstance(turn, dict) else None
        if role is None or not isinstance(turn.get('value'), str):
            raise Skip(f'turn with unknown speaker {turn.get("from") if isinstance(turn, dict) else turn!r}')
        messages.append({'role': role, 'content': turn['value']})
    media = {field: [v] if isinstance(v, str) else v for key, field, _ in MEDIA if (v := item.get(key))}
    return chat_record(messages, media, images_dir, out)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='the LLaVA JSON array')
    p.add_argument('--images', type=Path, help='the folder media paths are relative to (default: the input\'s)')
    args = p.parse_args(argv)
    check_output(args.out, [args.input])
    media_dir = images_folder(args.images, args.input)
    items = ((f'{args.input} item {i} ({item.get("id", "?") if isinstance(item, dict) else "?"})', item)
             for i, item in enumerate(stream_json_array(args.input)))
    convert(items, lambda item: convert_item(item, media_dir, args.out), args.out, desc='llava')


if __name__ == '__main__':
    sys.exit(run(main))
