"""Convert OpenAI-style chat JSONL (the vision fine-tuning format, `image_url` content items) into chat records.

    python -m public_data.openai_messages --input chats.jsonl --out chats_converted.jsonl [--images img/]

Each line `{"messages": [{"role": "user", "content": [{"type": "text", "text": "..."}, {"type": "image_url",
"image_url": {"url": "...", "detail": "low"}}]}, {"role": "assistant", "content": "..."}]}` keeps its messages;
`image_url` items become `{"type": "image", "image": <path>}`:

- `data:image/...;base64,...` URLs are decoded into files under `<out stem>_images/` next to the output (named by
  content hash, so a repeated image is stored once);
- `file://` URLs and plain paths are resolved against --images (default: the input file's folder);
- `http(s)://` URLs are refused: training runs offline, so download the images first.

Assistant turns with `tool_calls`, and `tool` / `function` messages, are refused (this toolkit trains vision answers,
not tool use), and so are lines with `tools`; a `developer` message is read as the system message; other keys
(a message's `name`, ...) are not used and counted in the summary; a final answer with `"weight": 0` has nothing to
learn and is refused. Lines that do not parse, have
no final assistant message or name a missing local image are skipped and reported. The input is read line by line.
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from .common import (
    Report,
    Skip,
    convert,
    images_folder,
    parser,
    relative_image,
    run,
    stored_size,
    stream_jsonl,
)

ROLES = ('system', 'user', 'assistant')
MESSAGE_KEYS = {'role', 'content', 'weight', 'tool_calls', 'function_call'}  # read; any other key is counted
EXTENSIONS = {'image/png': '.png', 'image/jpeg': '.jpg', 'image/jpg': '.jpg', 'image/webp': '.webp',
              'image/gif': '.gif', 'image/bmp': '.bmp'}


def _decoded(url: str, out: Path) -> Path:
    """The file a ``data:`` URL decodes to (written once per content)."""
    head, _, payload = url.partition(',')
    mime = head.removeprefix('data:').removesuffix(';base64')
    if not head.endswith(';base64') or mime not in EXTENSIONS:
        raise Skip(f'data URL must be data:image/<png|jpeg|webp|gif|bmp>;base64,..., got {head[:40]!r}')
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise Skip(f'data URL does not decode as base64: {exc}') from None
    stored_size(data, 'the data URL')  # bytes that are not an image (or one training refuses) are not written
    folder = out.resolve().parent / f'{out.stem}_images'
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (hashlib.sha256(data).hexdigest()[:20] + EXTENSIONS[mime])
    if not path.exists():
        path.write_bytes(data)
    return path


def _image(url: Any, images_dir: Path, out: Path) -> str:
    if not isinstance(url, str) or not url:
        raise Skip(f'image_url without a url: {url!r:.60}')
    if url.startswith(('http://', 'https://')):
        raise Skip(f'remote image URL (training reads local files only; download it first): {url:.80}')
    if url.startswith('data:'):
        return relative_image(_decoded(url, out), out)
    path = Path(url.removeprefix('file://'))
    path = path if path.is_absolute() else images_dir / path
    if not path.is_file():
        raise Skip(f'image file not found: {path}')
    return relative_image(path, out)


def _content(content: Any, images_dir: Path, out: Path) -> str | list[dict[str, str]]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise Skip('message content must be a string or a list of parts')
    items = []
    for part in content:
        kind = part.get('type') if isinstance(part, dict) else None
        if kind == 'text':
            items.append({'type': 'text', 'text': str(part.get('text', ''))})
        elif kind == 'image_url':
            url = part.get('image_url')
            items.append({'type': 'image', 'image': _image(url.get('url') if isinstance(url, dict) else url,
                                                           images_dir, out)})
        else:
            raise Skip(f'unsupported content part type {kind!r}')
    return items


def convert_item(item: Any, images_dir: Path, out: Path, report: Report | None = None) -> dict[str, Any]:
    messages = item.get('messages') if isinstance(item, dict) else None
    if not isinstance(messages, list) or not messages:
        raise Skip('no `messages`')
    if item.get('tools') or item.get('functions'):
        raise Skip('tool definitions are not supported (this toolkit trains vision answers, not tool use)')
    notes = report.notes if report is not None else Counter()
    for key in item.keys() - {'messages', 'tools', 'functions', 'parallel_tool_calls'}:
        notes[f'line key `{key}` not used'] += 1
    converted = []
    for message in messages:
        if not isinstance(message, dict):
            raise Skip('a message must be an object')
        if message.get('tool_calls') or message.get('function_call') or message.get('role') in ('tool', 'function'):
            raise Skip('tool calls are not supported (this toolkit trains vision answers, not tool use)')
        role = message.get('role')
        if role == 'developer':  # OpenAI's newer name for the system message
            role = 'system'
            notes['developer message read as system'] += 1
        if role not in ROLES:
            raise Skip(f'unknown role {message.get("role")!r}')
        for key in message.keys() - MESSAGE_KEYS:
            notes[f'message key `{key}` not used'] += 1
        content = _content(message.get('content'), images_dir, out)
        if role == 'assistant' and isinstance(content, list):  # text parts of an answer
            if any(part['type'] != 'text' for part in content):
                raise Skip('an assistant message can only hold text')
            content = ''.join(part['text'] for part in content)
        converted.append({'role': role, 'content': content})
    if converted[-1]['role'] != 'assistant':
        raise Skip('the last message is not from the assistant')
    if messages[-1].get('weight') == 0:
        raise Skip('the final answer has weight 0: nothing to learn')
    if report is not None and any('weight' in m for m in messages[:-1]):
        report.notes['`weight` of earlier turns not used (the last answer is learned)'] += 1
    return {'messages': converted}


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, required=True, help='OpenAI-style JSONL')
    p.add_argument('--images', type=Path, help='folder relative image paths are resolved against (default: the '
                                               'input\'s)')
    args = p.parse_args(argv)
    images_dir = images_folder(args.images, args.input)
    report = Report()
    items = ((f'{args.input}:{n}', item) for n, item in stream_jsonl(args.input))
    convert(items, lambda item: convert_item(item, images_dir, args.out, report), args.out, desc='openai messages',
            inputs=[args.input], report=report)


if __name__ == '__main__':
    sys.exit(run(main))
