"""Convert OpenAI-style chat JSONL (`image_url` content items) into chat records.

    python -m public_data.openai_messages --input chats.jsonl --images img/ --out chats_converted.jsonl

Each line `{"messages": [{"role": "user", "content": [{"type": "text", "text": "..."}, {"type": "image_url",
"image_url": {"url": "..."}}]}, {"role": "assistant", "content": "..."}]}` keeps its messages; `image_url` items
become `{"type": "image", "image": ...}`. `data:` URLs are kept, `file://` URLs and relative paths are resolved
against --images; http(s) URLs are kept (training then needs network access). Lines that do not parse, have no
final assistant message or name a missing local image are skipped and reported. The input is read line by line.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import Skip, convert, parser, relative_image, stream_jsonl


def _image(url: str, images_dir: Path, out: Path) -> str:
    if url.startswith(('data:', 'http://', 'https://')):
        return url
    path = Path(url.removeprefix('file://'))
    path = path if path.is_absolute() else images_dir / path
    if not path.is_file():
        raise Skip(f'image file not found: {path}')
    return relative_image(path, out)


def convert_item(item: dict[str, Any], images_dir: Path, out: Path) -> dict[str, Any]:
    messages = item.get('messages') if isinstance(item, dict) else None
    if not isinstance(messages, list) or not messages:
        raise Skip('no `messages`')
    converted = []
    for message in messages:
        content = message.get('content')
        if isinstance(content, list):
            items = []
            for part in content:
                if part.get('type') == 'text':
                    items.append({'type': 'text', 'text': part.get('text', '')})
                elif part.get('type') == 'image_url':
                    url = part.get('image_url')
                    url = url.get('url') if isinstance(url, dict) else url
                    items.append({'type': 'image', 'image': _image(str(url), images_dir, out)})
                else:
                    raise Skip(f'unsupported content item type {part.get("type")!r}')
            content = items
        elif not isinstance(content, str):
            raise Skip('message content must be a string or a list')
        converted.append({'role': message.get('role'), 'content': content})
    if converted[-1]['role'] != 'assistant':
        raise Skip('the last message is not from the assistant')
    return {'messages': converted}


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='OpenAI-style JSONL')
    p.add_argument('--images', type=Path, default=Path('.'), help='folder relative image paths are resolved against')
    args = p.parse_args(argv)
    items = ((f'line {n}', item) for n, item in stream_jsonl(args.input))
    convert(items, lambda item: convert_item(item, args.images, args.out), args.out, desc='openai messages')


if __name__ == '__main__':
    main()
