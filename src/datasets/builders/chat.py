"""Chat passthrough: check a record with ready ``messages`` and turn it into ms-swift template inputs.

Such a record is ``{"messages": [...]}`` in the chat format Qwen3-VL uses: user content is a list of ``{"type": "image",
"image": path}``, ``{"type": "video", "video": path}`` and ``{"type": "text", "text": ...}`` items, the assistant answer
is text. ms-swift's own form, text with ``<image>`` / ``<video>`` placeholders plus ``images`` / ``videos`` lists, is
accepted too (its query-response rows as well: ``query_form_as_messages``), and so are its grounding rows:
``<ref-object>`` / ``<bbox>`` in the text with ``objects: {"ref": [...], "bbox": [[x1, y1, x2, y2] | [x, y], ...],
"bbox_type": "real" | "norm1", "image_id": [...]}``. Those are handed to ms-swift's template, which writes them as the
model's grounding text (Qwen3-VL: 0-1000 of the image) exactly as ``swift sft`` does. Relative media paths are resolved
against the JSONL's directory. Every problem is an error that names the file, the line and the field; nothing is
skipped, and a key this schema does not know (a record's `image` for `images`, a message's `loss`) is an error, never
dropped.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ...config.reserved_text import control_token_problem
from ..contract import RecordError, data_url_problem, number_list, remote_problem, unknown_keys_problem

ROLES = ('system', 'user', 'assistant', 'tool')
MEDIA = {'image': ('images', '<image>'), 'video': ('videos', '<video>')}  # item type -> (list field, placeholder)
CHAT_RECORD_KEYS = ('messages', 'images', 'videos', 'objects', 'dataset', '_fusion_source')
MESSAGE_KEYS = ('role', 'content')
# ms-swift keys of its standard format that this toolkit's trainers do not read, and what to do instead.
NOT_READ = {
    'tools': 'tool-calling records are not trained here',
    'audios': 'Qwen-VL models take no audio',
    'rejected_response': 'preference pairs (DPO) are not trained here',
    'label': 'KTO labels are not trained here',
    'system': 'give the system prompt as the first message ({"role": "system", "content": ...})',
}
MESSAGE_NOT_READ = {
    'loss': 'which turns carry loss is `template.loss_scale` (last_round: the last answer; default: every answer)',
    'loss_scale': 'which turns carry loss is `template.loss_scale` (last_round: the last answer; default: every '
                  'answer)',
}
ITEM_KEYS = {'text': ('type', 'text'), 'image': ('type', 'image'), 'video': ('type', 'video'),
             'image_url': ('type', 'image_url')}
IMAGE_URL_KEYS = ('url', 'detail')  # OpenAI's image_url object; `detail` does not apply to local training
# ms-swift's grounding placeholders -> the `objects` list each one takes the next entry of.
GROUNDING = {'<ref-object>': 'ref', '<bbox>': 'bbox'}
OBJECT_KEYS = ('ref', 'bbox', 'bbox_type', 'image_id')  # ms-swift's order (swift.dataset.preprocessor.core)
BBOX_TYPES = ('real', 'norm1')  # pixels of the image, or 0-1 of its size


def _resolve_media(value: Any, base_dir: Path, where: str, kind: str) -> str:
    """The media file as an absolute path (or the data URL), checked to exist and, for an image, to open as one."""
    from . import image_header_problem

    if not isinstance(value, str) or not value:
        raise RecordError(f'{where}: {"an" if kind == "image" else "a"} {kind} must be a path string, got {value!r}')
    if problem := remote_problem(value) or data_url_problem(value):
        raise RecordError(f'{where}: {problem}')
    if not value.startswith('data:'):
        path = Path(os.path.abspath(base_dir / value))  # absolute, `..` removed: the same file, the same string
        if not path.is_file():
            raise RecordError(f'{where}: {kind} file not found: {path}')
        value = str(path)
    if kind == 'image' and (problem := image_header_problem(value)) is not None:
        raise RecordError(f'{where}: {problem}')
    return value


def _check_keys(value: dict[str, Any], valid: tuple[str, ...], not_read: dict[str, str], where: str,
                what: str) -> None:
    for key in value:
        if key in not_read:
            raise RecordError(f'{where}: `{key}` is not read by this toolkit: {not_read[key]}')
    if (problem := unknown_keys_problem(value, valid, what)) is not None:
        raise RecordError(f'{where}: {problem}')


def _count_placeholders(text: str, where: str, counts: dict[str, int]) -> None:
    if (problem := control_token_problem(text)) is not None:
        raise RecordError(f'{where}: {problem}')
    for kind, (_, placeholder) in MEDIA.items():
        counts[kind] += text.count(placeholder)
    for placeholder, key in GROUNDING.items():
        counts[key] += text.count(placeholder)


def _grounding_objects(record: dict[str, Any], counts: dict[str, int], image_paths: list[str],
                       where: str) -> dict | None:
    """ms-swift's `objects` of a chat record, checked against the text's ``<ref-object>`` / ``<bbox>`` placeholders
    and against the image each box is drawn on (inside it, with an area: ms-swift would write a box past the image as
    coordinates beyond 0-1000 without a word), with each box's corners ordered as ms-swift's preprocessor orders
    them."""
    images = len(image_paths)
    objects = record.get('objects')
    if objects is None:
        for placeholder, key in GROUNDING.items():
            if counts[key]:
                raise RecordError(f'{where}: the text has {counts[key]} {placeholder} placeholder(s) but the record '
                                  f'has no `objects` ({{"ref": [...], "bbox": [...]}}) to fill them')
        return None
    if not isinstance(objects, dict):
        raise RecordError(f'{where}: `objects` of a chat record is ms-swift\'s grounding form '
                          f'{{"ref": [...], "bbox": [[x1, y1, x2, y2], ...]}}, got {objects!r:.80}')
    unknown = [k for k in objects if k not in OBJECT_KEYS]
    if unknown:
        raise RecordError(f'{where}: objects: unknown key(s) {unknown}; valid: {", ".join(OBJECT_KEYS)}')
    refs, boxes = objects.get('ref') or [], objects.get('bbox') or []
    if not isinstance(refs, list) or not all(isinstance(r, str) for r in refs):
        raise RecordError(f'{where}: objects.ref: must be a list of strings')
    for i, ref in enumerate(refs):
        if (problem := control_token_problem(ref)) is not None:
            raise RecordError(f'{where}: objects.ref[{i}] {problem}')
    if not isinstance(boxes, list):
        raise RecordError(f'{where}: objects.bbox: must be a list of boxes')
    for i, box in enumerate(boxes):
        if not number_list(box) or len(box) not in (2, 4):
            raise RecordError(f'{where}: objects.bbox[{i}]: must be [x1, y1, x2, y2] or a point [x, y], '
                              f'got {box!r:.60}')
    for placeholder, key, listed in (('<ref-object>', 'ref', refs), ('<bbox>', 'bbox', boxes)):
        if counts[key] != len(listed):
            raise RecordError(f'{where}: the text has {counts[key]} {placeholder} placeholder(s) but objects.{key} '
                              f'has {len(listed)} entries; they must match one to one')
    bbox_type = objects.get('bbox_type', 'real')
    if bbox_type not in BBOX_TYPES:
        raise RecordError(f'{where}: objects.bbox_type: {bbox_type!r} is not one ms-swift reads; use "real" (pixels) '
                          'or "norm1" (0-1 of the image size)')
    image_ids = objects.get('image_id') or []
    if not isinstance(image_ids, list) or not all(isinstance(i, int) and 0 <= i < images for i in image_ids):
        raise RecordError(f'{where}: objects.image_id: must list, per box, the index of one of the record\'s '
                          f'{images} image(s)')
    if boxes and not images:
        raise RecordError(f'{where}: objects.bbox: boxes need the image they are drawn on (`images`)')
    ordered = [[min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]), max(b[1], b[3])] if len(b) == 4 else list(b)
               for b in boxes]
    from . import header_size

    sizes: dict[int, tuple[int, int]] = {}  # the "real" size ms-swift normalises a box against, per image
    for i, box in enumerate(ordered):
        image = image_ids[i] if i < len(image_ids) else 0  # ms-swift: a box without one is on the first image
        if bbox_type == 'norm1':
            width = height = 1
        else:
            if image not in sizes:
                sizes[image] = header_size(image_paths[image])
            width, height = sizes[image]
        xs, ys = box[0::2], box[1::2]
        if min(xs) < 0 or max(xs) > width or min(ys) < 0 or max(ys) > height:
            frame = 'the 0-1 range of bbox_type "norm1"' if bbox_type == 'norm1' else f'the {width}x{height} image'
            raise RecordError(f'{where}: objects.bbox[{i}]: {boxes[i]} leaves {frame}')
        if len(box) == 4 and not (box[0] < box[2] and box[1] < box[3]):
            raise RecordError(f'{where}: objects.bbox[{i}]: {boxes[i]} has no area (x1 = x2 or y1 = y2)')
    out = {'ref': list(refs), 'bbox': ordered, 'bbox_type': bbox_type}
    if image_ids:
        out['image_id'] = list(image_ids)
    return out


QUERY_FORM = ('query', 'response', 'history', 'system')  # ms-swift's query-response rows


def query_form_as_messages(record: dict[str, Any], where: str) -> dict[str, Any]:
    """An ms-swift query-response row (``query``, ``response``, ``history: [[query, response], ...]``, ``system``) as
    the ``messages`` ms-swift's own preprocessor makes of it; its other keys (``images``, ``objects``, ...) stay."""
    history = record.get('history') or []
    if not isinstance(history, list) or not all(
            isinstance(turn, (list, tuple)) and len(turn) == 2 and all(isinstance(t, str) for t in turn)
            for turn in history):
        raise RecordError(f'{where}: `history` must be a list of [query, response] pairs of strings')
    for key in ('query', 'response', 'system'):
        if key in record and record[key] is not None and not isinstance(record[key], str):
            raise RecordError(f'{where}: `{key}` must be a string')
    messages = [{'role': 'system', 'content': record['system']}] if record.get('system') else []
    for query, response in [*history, (record.get('query') or '', record.get('response'))]:
        messages += [{'role': 'user', 'content': query}, {'role': 'assistant', 'content': response}]
    return {**{k: v for k, v in record.items() if k not in QUERY_FORM}, 'messages': messages}


def to_template_inputs(record: Any, base_dir: Path, where: str) -> dict[str, Any]:
    """Validate ``record`` and return ms-swift ``encode`` inputs with absolute media paths.

    ``where`` is ``file:line``, the prefix of every error message.
    """
    if not isinstance(record, dict):
        raise RecordError(f'{where}: a record must be a JSON object, got {type(record).__name__}')
    if 'messages' not in record:
        record = query_form_as_messages(record, where)
    _check_keys(record, CHAT_RECORD_KEYS, NOT_READ, where, 'the chat record')
    for key in ('dataset', '_fusion_source'):
        if key in record and not isinstance(record[key], str):
            raise RecordError(f'{where}: `{key}` must be a string')
    messages = record.get('messages')
    if not isinstance(messages, list) or not messages:
        raise RecordError(f'{where}: `messages` must be a non-empty list of {{"role", "content"}} objects')
    out_messages = []
    items_found = {kind: 0 for kind in MEDIA}
    placeholders = {kind: 0 for kind in [*MEDIA, *GROUNDING.values()]}
    for m, message in enumerate(messages):
        field = f'{where}: messages[{m}]'
        if not isinstance(message, dict) or message.get('role') not in ROLES:
            raise RecordError(f'{field}: needs a `role` in {ROLES}, got {message!r:.80}')
        _check_keys(message, MESSAGE_KEYS, MESSAGE_NOT_READ, field, 'the message')
        if message['role'] == 'system' and m > 0:
            raise RecordError(f'{field}: a system message can only be the first message (the template takes one '
                              'system prompt, before the conversation); merge its text into the first, or leave it '
                              'out')
        content = message.get('content')
        if isinstance(content, str):
            _count_placeholders(content, f'{field}.content', placeholders)
            out_messages.append({'role': message['role'], 'content': content})
            continue
        if not isinstance(content, list):
            raise RecordError(f'{field}.content: must be a string or a list of content items')
        items = []
        for c, item in enumerate(content):
            item_field = f'{field}.content[{c}]'
            kind = item.get('type') if isinstance(item, dict) else None
            if kind in ITEM_KEYS:
                _check_keys(item, ITEM_KEYS[kind], {}, item_field, f'{"an" if kind[0] == "i" else "a"} "{kind}" item')
            if kind == 'image_url' and isinstance(item.get('image_url'), dict):
                _check_keys(item['image_url'], IMAGE_URL_KEYS, {}, f'{item_field}.image_url', 'image_url')
            if kind == 'text':
                text = item.get('text')
                if not isinstance(text, str):
                    raise RecordError(f'{item_field}.text: must be a string')
                _count_placeholders(text, f'{item_field}.text', placeholders)
                items.append({'type': 'text', 'text': text})
            elif kind in MEDIA or kind == 'image_url':  # OpenAI's {"type": "image_url", "image_url": {"url": ...}}
                value = item.get(kind)
                if kind == 'image_url':
                    kind, value = 'image', value.get('url') if isinstance(value, dict) else value
                    value = value.removeprefix('file://') if isinstance(value, str) else value
                path = _resolve_media(value, base_dir, f'{item_field}.{item["type"]}', kind)
                items.append({'type': kind, kind: path})
                items_found[kind] += 1
            else:
                raise RecordError(f'{item_field}: `type` must be "text", "image", "image_url" or "video", got '
                                  f'{item!r:.80}')
        out_messages.append({'role': message['role'], 'content': items})
    if out_messages[-1]['role'] != 'assistant':
        raise RecordError(f'{where}: the last message must be the assistant answer to learn from')
    answer = out_messages[-1]['content']
    texts = [answer] if isinstance(answer, str) else [i['text'] for i in answer if i['type'] == 'text']
    if not any(t.strip() for t in texts):
        raise RecordError(f'{where}: messages[{len(messages) - 1}]: the assistant answer is empty; there would be '
                          'nothing to learn but the end-of-turn token. Give the answer text or leave the record out')

    inputs: dict[str, Any] = {'messages': out_messages}
    for kind, (list_field, placeholder) in MEDIA.items():
        listed = record.get(list_field, [])
        if not isinstance(listed, list):
            raise RecordError(f'{where}: `{list_field}` must be a list of paths')
        if listed and items_found[kind]:
            raise RecordError(f'{where}: give {list_field} either as content items or as `{list_field}` + '
                              f'{placeholder}, not both')
        if placeholders[kind] and items_found[kind] and not listed:
            raise RecordError(f'{where}: the text holds {placeholders[kind]} literal {placeholder}, which training '
                              f'reads as a placeholder for `{list_field}`, while the {kind}s are content items '
                              f'(which stand where they are); remove {placeholder} from the text')
        if placeholders[kind] != len(listed):
            raise RecordError(f'{where}: the text has {placeholders[kind]} {placeholder} placeholder(s) but the '
                              f'record lists {len(listed)} {kind}(s) in `{list_field}`; they must match one to one')
        if listed:
            inputs[list_field] = [
                _resolve_media(v, base_dir, f'{where}: {list_field}[{i}]', kind) for i, v in enumerate(listed)
            ]
    image_paths = inputs.get('images') or [item['image'] for m in out_messages if isinstance(m['content'], list)
                                            for item in m['content'] if item['type'] == 'image']
    objects = _grounding_objects(record, placeholders, image_paths, where)
    if objects is not None:
        inputs['objects'] = objects
    return inputs


def to_swift_row(inputs: dict[str, Any]) -> dict[str, Any]:
    """Template inputs as a row of ms-swift's standard dataset format: text messages with ``<image>`` / ``<video>``
    placeholders in order, and the ``images`` / ``videos`` lists, so ``swift infer --val_dataset`` reads it as is."""
    media: dict[str, list[str]] = {kind: list(inputs.get(list_field, [])) for kind, (list_field, _) in MEDIA.items()}
    messages = []
    for message in inputs['messages']:
        content = message['content']
        if not isinstance(content, str):
            parts = []
            for item in content:
                if item['type'] == 'text':
                    parts.append(item['text'])
                else:
                    parts.append(MEDIA[item['type']][1])
                    media[item['type']].append(item[item['type']])
            content = ''.join(parts)
        messages.append({'role': message['role'], 'content': content})
    row: dict[str, Any] = {'messages': messages}
    row.update({MEDIA[kind][0]: paths for kind, paths in media.items() if paths})
    if 'objects' in inputs:
        row['objects'] = inputs['objects']
    return row
