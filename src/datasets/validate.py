"""Check every record of a JSONL file and report all problems at once.

    python -m src.datasets.validate FILE.jsonl [--config x.yaml]

Checks the contract (fields, geometry inside the image and well formed), that each image exists and decodes, the
<image> placeholder count of chat records, and, with --config, that each encoded record fits `global_max_length`
with that config's model, mode and prompts. Prints `file:line: problem` lines and a summary; exits 1 on any problem.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from .builders import BUILDERS, BuildSettings, image_input
from .builders.chat import to_template_inputs
from .contract import RecordError, image_path, is_chat_record, record_problems


def _image_problems(record: dict[str, Any], base_dir: Path) -> list[str]:
    problems = []
    entries = [(f'images[{i}]', v) for i, v in enumerate(record.get('images') or [])]
    for m, message in enumerate(record.get('messages') or []):
        content = message.get('content') if isinstance(message, dict) else None
        for c, item in enumerate(content if isinstance(content, list) else []):
            if isinstance(item, dict) and item.get('type') == 'image':
                entries.append((f'messages[{m}].content[{c}].image', item.get('image')))
    for field, value in entries:
        path = image_path(value, base_dir)
        if path is None or not path.is_file():
            continue  # missing files are reported by the contract checks
        try:
            with Image.open(path) as image:
                image.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the record's problem
            problems.append(f'{field}: {path} does not decode as an image ({exc})')
    return problems


def check_record(record: Any, base_dir: Path, settings: BuildSettings, template: Any = None,
                 max_length: int | None = None) -> list[str]:
    """All problems of one parsed record; with a template (no length limit of its own), also its encoded length."""
    if isinstance(record, dict) and is_chat_record(record):
        try:
            inputs = to_template_inputs(record, base_dir, '')
        except RecordError as exc:
            return [str(exc).removeprefix(': ')]
    else:
        problems = record_problems(record, base_dir)
        if problems:
            return problems
        try:
            inputs = BUILDERS[settings.mode](record, image_input(record['images'][0], base_dir), settings)
        except ValueError as exc:
            return [str(exc)]
    problems = _image_problems(record, base_dir)
    if template is not None and max_length is not None and not problems:
        length = template.encode(inputs, return_length=True)['length']
        if length > max_length:
            problems.append(f'encoded length {length} tokens exceeds max_length {max_length}')
    return problems


def _template_for(config_path: str):
    """The config's build settings, an ms-swift template with no length limit (it measures), and the limit."""
    from swift.model import get_processor
    from swift.template import get_template

    from ..config import ConfigError, load_and_validate
    from ..config.remote_code import remote_code_problems
    from ..swift_seams import remote_code_only_for
    from ..testing.tiny_model import ensure_tiny_model

    cfg = load_and_validate(config_path)
    ensure_tiny_model(cfg.model['model'], cfg.custom.build_tiny_model, cfg.model.get('model_type'))
    settings = BuildSettings.from_config(cfg)
    trusted = bool(cfg.model.get('trust_remote_code'))
    if problems := remote_code_problems(cfg.model['model'], 'model.trust_remote_code', trusted):
        raise ConfigError(problems)
    with remote_code_only_for([cfg.model['model']] if trusted else []):
        processor = get_processor(cfg.model['model'], model_type=cfg.model.get('model_type'))
    template = get_template(processor, max_length=None, max_pixels=cfg.template.get('max_pixels'))
    template.set_mode('train')
    return settings, template, cfg.template.get('max_length')


def validate_file(path: Path, settings: BuildSettings, template: Any = None, max_length: int | None = None,
                  out=None) -> tuple[int, int, int]:
    """Print every problem of ``path`` (to ``out``, default stdout); returns (records, bad records, problems)."""
    out = out or sys.stdout
    records = bad = total = 0
    with open(path, 'rb') as f:
        lines = list(enumerate(f, start=1))
    for line_no, raw in tqdm(lines, desc=f'validating {path.name}', unit='rec', file=sys.stderr):
        if not raw.strip():
            continue
        records += 1
        try:
            record = json.loads(raw)
            problems = check_record(record, path.parent, settings, template, max_length)
        except json.JSONDecodeError as exc:
            problems = [f'invalid JSON: {exc}']
        for problem in problems:
            print(f'{path}:{line_no}: {problem}', file=out)
        bad += bool(problems)
        total += len(problems)
    return records, bad, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m src.datasets.validate', description=__doc__.split('\n')[0])
    parser.add_argument('jsonl', type=Path, help='the JSONL file to check')
    parser.add_argument('--config', help='also check encoded lengths with this training config')
    args = parser.parse_args(argv)
    if not args.jsonl.is_file():
        print(f'{args.jsonl}: file not found', file=sys.stderr)
        return 2
    settings, template, max_length = BuildSettings(), None, None
    if args.config:
        from ..config import ConfigError

        try:
            settings, template, max_length = _template_for(args.config)
        except ConfigError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    records, bad, total = validate_file(args.jsonl, settings, template, max_length)
    print(f'{args.jsonl}: {records} records, {bad} with problems, {total} problems in all')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
