"""Chat passthrough: check a record with ready ``messages`` and turn it into ms-swift template inputs.

Such a record is ``{"messages": [...]}`` in the chat format Qwen3-VL uses: user content is a list of
``{"type": "image", "image": path}`` and ``{"type": "text", "text": ...}`` items, the assistant answer is text.
ms-swift's own ``{"messages": [...], "images": [...]}`` form with ``<image>`` placeholders is accepted too.
Relative image paths are resolved against the JSONL's directory. Every problem is an error that names the file, the
line and the field; nothing is skipped.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from ..contract import RecordError

ROLES = ('system', 'user', 'assistant', 'tool')
IMAGE_PLACEHOLDER = '<image>'
# Vision tokens the template inserts itself; hand-written ones would desynchronise text and pixels.
RESERVED_TOKENS = ('<|image_pad|>', '<|video_pad|>', '<|vision_start|>', '<|vision_end|>')


def _resolve_image(value: Any, base_dir: Path, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise RecordError(f'{where}: an image must be a path string, got {value!r}')
    if value.startswith(('http://', 'https://', 'data:')):
        return value
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    if not path.is_file():
        raise RecordError(f'{where}: image file not found: {path}')
    return str(path)


def _count_placeholders(text: str, where: str) -> int:
    for token in RESERVED_TOKENS:
        if token in text:
            raise RecordError(f'{where}: text contains {token}; the template inserts vision tokens itself, give the '
                              'image as a {"type": "image", "image": path} item instead')
    return text.count(IMAGE_PLACEHOLDER)


def to_template_inputs(record: Any, base_dir: Path, where: str) -> dict[str, Any]:
    """Validate ``record`` and return ms-swift ``encode`` inputs with absolute image paths.

    ``where`` is ``file:line``, the prefix of every error message.
    """
    if not isinstance(record, dict):
        raise RecordError(f'{where}: a record must be a JSON object, got {type(record).__name__}')
    messages = record.get('messages')
    if not isinstance(messages, list) or not messages:
        raise RecordError(f'{where}: `messages` must be a non-empty list of {{"role", "content"}} objects')
    out_messages = []
    item_images: list[str] = []
    placeholders = 0
    for m, message in enumerate(messages):
        field = f'{where}: messages[{m}]'
        if not isinstance(message, dict) or message.get('role') not in ROLES:
            raise RecordError(f'{field}: needs a `role` in {ROLES}, got {message!r:.80}')
        content = message.get('content')
        if isinstance(content, str):
            placeholders += _count_placeholders(content, f'{field}.content')
            out_messages.append({'role': message['role'], 'content': content})
            continue
        if not isinstance(content, list):
            raise RecordError(f'{field}.content: must be a string or a list of content items')
        items = []
        for c, item in enumerate(content):
            item_field = f'{field}.content[{c}]'
            kind = item.get('type') if isinstance(item, dict) else None
            if kind == 'text':
                text = item.get('text')
                if not isinstance(text, str):
                    raise RecordError(f'{item_field}.text: must be a string')
                placeholders += _count_placeholders(text, f'{item_field}.text')
                items.append({'type': 'text', 'text': text})
            elif kind == 'image':
                image = _resolve_image(item.get('image'), base_dir, f'{item_field}.image')
                item_images.append(image)
                items.append({'type': 'image', 'image': image})
            else:
                raise RecordError(f'{item_field}: `type` must be "text" or "image", got {item!r:.80}')
        out_messages.append({'role': message['role'], 'content': items})
    if out_messages[-1]['role'] != 'assistant':
        raise RecordError(f'{where}: the last message must be the assistant answer to learn from')

    listed = record.get('images', [])
    if not isinstance(listed, list):
        raise RecordError(f'{where}: `images` must be a list of paths')
    if listed and item_images:
        raise RecordError(f'{where}: give images either as content items or as `images` + <image>, not both')
    if placeholders != len(listed):
        raise RecordError(f'{where}: the text has {placeholders} <image> placeholder(s) but the record lists '
                          f'{len(listed)} image(s) in `images`; they must match one to one')
    images = [_resolve_image(v, base_dir, f'{where}: images[{i}]') for i, v in enumerate(listed)]
    inputs: dict[str, Any] = {'messages': out_messages}
    if images:
        inputs['images'] = images
    return inputs
