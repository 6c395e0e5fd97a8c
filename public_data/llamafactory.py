"""Convert LLaMA-Factory datasets (sharegpt or alpaca formatting, with `images` / `videos`) into chat records.

    python -m public_data.llamafactory --input data/mllm_demo.json --out mllm_demo.jsonl
    python -m public_data.llamafactory --dataset-info data/dataset_info.json --dataset mllm_demo --out mllm_demo.jsonl

Without --dataset-info the file is read as LLaMA-Factory's multimodal demo lays it out (`data/mllm_demo.json`): a
JSON array (or JSONL) of `{"messages": [{"role": "user", "content": "<image>Who are they?"}, {"role": "assistant",
...}], "images": ["mllm_demo_data/1.jpg"]}`; `conversations` with `from` / `value` (human, gpt, system) is read too.
With --dataset-info, the named entry's `file_name`, `formatting` (sharegpt or alpaca), `columns` and `tags` decide
how the file is read, exactly as LLaMA-Factory reads it; relative `file_name`s are relative to dataset_info.json.

Media paths are relative to the folder of dataset_info.json with --dataset-info (LLaMA-Factory's `media_dir`
defaults to its `dataset_dir`), else to the data file's folder, unless --images says otherwise. A sharegpt item
whose first turn is a system turn takes its system prompt from it, not from the `system` column (LLaMA-Factory's
rule). `<image>` / `<video>`
placeholders must match the listed files (LLaMA-Factory's own rule). Note that LLaMA-Factory learns every assistant
turn of a multi-turn conversation; this toolkit learns the last one unless `template.loss_scale: default` is set.
Tool calls (`function_call` / `observation` turns, a `tools` column) and preference data (`ranking`) are refused; a
`.json` file that holds JSON Lines is read as such, as LLaMA-Factory reads it.
"""
from __future__ import annotations

import itertools
import json
import sys
from pathlib import Path
from typing import Any

from .common import (
    ConversionError,
    Skip,
    chat_record,
    convert,
    images_folder,
    json_items,
    parser,
    read_text,
    run,
)

# LLaMA-Factory's defaults (data/README.md): sharegpt columns and tags, alpaca columns.
SHAREGPT_COLUMNS = {'messages': 'conversations', 'system': None, 'tools': None, 'images': None, 'videos': None}
SHAREGPT_TAGS = {'role_tag': 'from', 'content_tag': 'value', 'user_tag': 'human', 'assistant_tag': 'gpt',
                 'observation_tag': 'observation', 'function_tag': 'function_call', 'system_tag': 'system'}
ALPACA_COLUMNS = {'prompt': 'instruction', 'query': 'input', 'response': 'output', 'history': None, 'system': None,
                  'images': None, 'videos': None}


class Spec:
    """How one dataset is read: its formatting, column names and role tags."""

    def __init__(self, formatting: str = 'sharegpt', columns: dict | None = None, tags: dict | None = None):
        if formatting not in ('sharegpt', 'alpaca'):
            raise ConversionError(f'formatting {formatting!r} is not supported; use sharegpt or alpaca')
        defaults = SHAREGPT_COLUMNS if formatting == 'sharegpt' else ALPACA_COLUMNS
        self.formatting = formatting
        self.columns = {**defaults, 'images': 'images', 'videos': 'videos', **(columns or {})}
        self.tags = {**SHAREGPT_TAGS, **(tags or {})}


def registry_entry(info: Path, name: str) -> tuple[Path, Spec]:
    """The data file and reading spec of ``name`` in a dataset_info.json."""
    try:
        registry = json.loads(read_text(info))
    except (OSError, json.JSONDecodeError) as exc:
        raise ConversionError(f'{info}: cannot read the dataset registry ({exc})') from None
    if name not in registry:
        close = [k for k in registry if name.lower() in k.lower()][:5]
        raise ConversionError(f'{info}: no dataset {name!r}' + (f'; similar: {", ".join(close)}' if close else ''))
    entry = registry[name]
    if entry.get('ranking'):
        raise ConversionError(f'{info}: {name} is a preference (ranking) dataset; only supervised data converts')
    if 'file_name' not in entry:
        raise ConversionError(f'{info}: {name} has no local `file_name` (hub datasets must be downloaded first)')
    return info.resolve().parent / entry['file_name'], Spec(entry.get('formatting', 'alpaca'), entry.get('columns'),
                                                              entry.get('tags'))


def guess_spec(first: Any) -> Spec:
    """The layout of a file read without a registry, from its first item."""
    if isinstance(first, dict) and 'messages' in first:
        return Spec('sharegpt', {'messages': 'messages'}, {'role_tag': 'role', 'content_tag': 'content',
                                                           'user_tag': 'user', 'assistant_tag': 'assistant'})
    if isinstance(first, dict) and 'instruction' in first:
        return Spec('alpaca')
    return Spec('sharegpt')


def _messages_sharegpt(item: dict[str, Any], spec: Spec) -> list[dict[str, str]]:
    turns = item.get(spec.columns['messages'])
    if not isinstance(turns, list) or not turns:
        raise Skip(f'no `{spec.columns["messages"]}`')
    tags = spec.tags
    roles = {tags['user_tag']: 'user', tags['assistant_tag']: 'assistant', tags['system_tag']: 'system'}
    messages = []
    system = item.get(spec.columns['system']) if spec.columns.get('system') else None
    first_is_system = isinstance(turns[0], dict) and turns[0].get(tags['role_tag']) == tags['system_tag']
    if system and not first_is_system:  # LLaMA-Factory: a system turn first wins over the system column
        messages.append({'role': 'system', 'content': str(system)})
    for turn in turns:
        if not isinstance(turn, dict):
            raise Skip('a turn must be an object')
        tag = turn.get(tags['role_tag'])
        if tag in (tags['function_tag'], tags['observation_tag']):
            raise Skip('tool calls are not supported (function_call / observation turns)')
        if tag not in roles or not isinstance(turn.get(tags['content_tag']), str):
            raise Skip(f'turn with unknown role {tag!r} or no text')
        messages.append({'role': roles[tag], 'content': turn[tags['content_tag']]})
    return messages


def _messages_alpaca(item: dict[str, Any], spec: Spec) -> list[dict[str, str]]:
    columns = spec.columns
    prompt, query, response = (item.get(columns[k]) or '' for k in ('prompt', 'query', 'response'))
    if not isinstance(response, str) or not response:
        raise Skip(f'no `{columns["response"]}`')
    messages = []
    if columns.get('system') and item.get(columns['system']):
        messages.append({'role': 'system', 'content': str(item[columns['system']])})
    for old_prompt, old_response in (item.get(columns['history']) or []) if columns.get('history') else []:
        messages += [{'role': 'user', 'content': old_prompt}, {'role': 'assistant', 'content': old_response}]
    messages += [{'role': 'user', 'content': '\n'.join(p for p in (prompt, query) if p)},
                 {'role': 'assistant', 'content': response}]
    return messages


def convert_item(item: Any, spec: Spec, media_dir: Path, out: Path) -> dict[str, Any]:
    if not isinstance(item, dict):
        raise Skip(f'an item must be an object, got {type(item).__name__}')
    if spec.columns.get('tools') and item.get(spec.columns['tools']):
        raise Skip(f'tool definitions (`{spec.columns["tools"]}`) are not trained here')
    messages = (_messages_sharegpt if spec.formatting == 'sharegpt' else _messages_alpaca)(item, spec)
    media = {}
    for field in ('images', 'videos'):
        value = item.get(spec.columns[field]) if spec.columns.get(field) else None
        if value:
            media[field] = [value] if isinstance(value, str) else value
    return chat_record(messages, media, media_dir, out, prepend=False)


def main(argv: list[str] | None = None) -> None:
    p = parser(__doc__)
    p.add_argument('--input', type=Path, help='the data file (JSON array or JSONL)')
    p.add_argument('--dataset-info', type=Path, help="LLaMA-Factory's data/dataset_info.json")
    p.add_argument('--dataset', help='the dataset name in --dataset-info')
    p.add_argument('--images', type=Path, help='folder media paths are relative to (default: the data file\'s)')
    args = p.parse_args(argv)
    if args.dataset_info:
        if not args.dataset:
            p.error('--dataset-info needs --dataset NAME')
        path, spec = registry_entry(args.dataset_info, args.dataset)
    elif args.input:
        path, spec = args.input, None
    else:
        p.error('give --input FILE, or --dataset-info data/dataset_info.json --dataset NAME')
    if not path.is_file():
        raise ConversionError(f'data file {path} does not exist')
    media_dir = images_folder(args.images, args.dataset_info or path)
    items = json_items(path)
    if spec is None:
        first = next(items, None)
        spec = guess_spec(first[1] if first else None)
        items = itertools.chain([first] if first else [], items)
    convert(items, lambda item: convert_item(item, spec, media_dir, args.out), args.out, desc='llamafactory',
            inputs=[path, args.dataset_info])


if __name__ == '__main__':
    sys.exit(run(main))
