"""Check every record of a JSONL file and report all problems at once.

    python -m src.datasets.validate FILE.jsonl [--config x.yaml | --mode summary]

Checks the contract (fields, geometry inside the image and well formed, `width` x `height` equal to the image file,
pixel coordinates), that each image exists and decodes, the placeholders of chat records, and then builds each record
exactly as training does; with --config, with that config's model, mode, prompts, video sampling and length limit,
so a record passes here exactly when it trains. Without --config, records are checked for `--mode` (default
`dense`: every geometry record needs objects to list). Lines that are not UTF-8 or not JSON are reported like any
other problem. Prints `file:line: problem` lines and a summary; exits 1 on any problem or on a file with no records.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from PIL import Image
from tqdm import tqdm

from .builders import BuildSettings, image_header_problem, image_input, image_source
from .contract import MODES, REMOTE, RecordError, image_path, is_chat_record, record_problems
from .dense_caption import DenseCaptionDataset


def _image_problems(record: dict[str, Any], base_dir: Path) -> list[str]:
    """Every image of the record must decode (local files and data URLs): the training loader opens them all."""
    problems = []
    entries = [(f'images[{i}]', v) for i, v in enumerate(record.get('images') or [])]
    for m, message in enumerate(record.get('messages') or []):
        content = message.get('content') if isinstance(message, dict) else None
        for c, item in enumerate(content if isinstance(content, list) else []):
            if isinstance(item, dict) and item.get('type') == 'image':
                entries.append((f'messages[{m}].content[{c}].image', item.get('image')))
    for field, value in entries:
        path = image_path(value, base_dir)
        if (path is not None and not path.is_file()) or (isinstance(value, str) and value.startswith(REMOTE)):
            continue  # missing files and remote URLs are reported by the record checks
        try:
            source = image_input(value, base_dir)
        except ValueError as exc:
            problems.append(f'{field}: {exc}')
            continue
        if (problem := image_header_problem(source)) is not None:
            problems.append(f'{field}: {problem}')
            continue
        try:
            with Image.open(image_source(source)) as image:
                image.load()
        except Exception as exc:  # noqa: BLE001 - any decoder failure is the record's problem
            problems.append(f'{field}: {path or "the inline image"} does not decode as an image ({exc})')
    return problems


def check_record(dataset: DenseCaptionDataset, idx: int, encode: bool) -> list[str]:
    """All problems of record ``idx``: the contract's (every one, not just the first), every image decoding, then
    exactly what training does with the record (build, and with ``encode`` the template's encode with the run's
    length limit), so the verdict is training's."""
    where = dataset.where(idx)
    try:
        record = dataset.record(idx)
    except RecordError as exc:
        return [str(exc).removeprefix(f'{where}: ')]
    chat = isinstance(record, dict) and is_chat_record(record)
    problems = [] if chat else record_problems(record, dataset.path.parent, mode=dataset.settings.mode)
    if not problems and isinstance(record, dict):
        problems = _image_problems(record, dataset.path.parent)
    if not problems:
        try:
            dataset.encode(idx, draw=idx) if encode else dataset.inputs(idx)
        except RecordError as exc:
            problems.append(str(exc).removeprefix(f'{where}: '))
    return problems


def _template_for(config_path: str):
    """The config's build settings and an ms-swift template set up as training sets it up (length limit,
    `truncation_strategy: raise`, video sampling), so that encoding a record here fails exactly when it would there."""
    from swift.model import get_processor
    from swift.template import get_template

    from ..config import ConfigError, load_and_validate
    from ..config.remote_code import remote_code_problems
    from ..swift_seams import remote_code_only_for, set_video_sampling
    from ..testing.tiny_model import ensure_tiny_model

    cfg = load_and_validate(config_path)
    ensure_tiny_model(cfg.model['model'], cfg.custom.build_tiny_model, cfg.model.get('model_type'))
    settings = BuildSettings.from_config(cfg)
    trusted = bool(cfg.model.get('trust_remote_code'))
    if problems := remote_code_problems(cfg.model['model'], 'model.trust_remote_code', trusted):
        raise ConfigError(problems)
    set_video_sampling(cfg.video.environment())
    with remote_code_only_for([cfg.model['model']] if trusted else []):
        processor = get_processor(cfg.model['model'], model_type=cfg.model.get('model_type'))
    template = get_template(processor, max_length=cfg.template.get('max_length'), truncation_strategy='raise',
                            max_pixels=cfg.template.get('max_pixels'))
    template.set_mode('train')
    return settings, template


def validate_file(path: Path, settings: BuildSettings, template: Any = None, out=None) -> tuple[int, int, int]:
    """Print every problem of ``path`` (to ``out``, default stdout); returns (records, bad records, problems)."""
    out = out or sys.stdout
    dataset = DenseCaptionDataset(path, template, settings=settings)
    bad = total = 0
    for idx in tqdm(range(len(dataset)), desc=f'validating {path.name}', unit='rec', file=sys.stderr):
        problems = check_record(dataset, idx, encode=template is not None)
        for problem in problems:
            print(f'{dataset.where(idx)}: {problem}', file=out)
        bad += bool(problems)
        total += len(problems)
    return len(dataset), bad, total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m src.datasets.validate', description=__doc__.split('\n')[0])
    parser.add_argument('jsonl', type=Path, help='the JSONL file to check')
    parser.add_argument('--config', help='also check encoded lengths with this training config')
    parser.add_argument('--mode', choices=MODES, help='the training mode the records are for, without --config '
                                                      '(default: dense)')
    args = parser.parse_args(argv)
    if not args.jsonl.is_file():
        print(f'{args.jsonl}: file not found', file=sys.stderr)
        return 2
    if args.config and args.mode:
        parser.error('--mode comes from the config (`custom.mode`) when --config is given; pass one of the two')
    settings, template = BuildSettings(mode=args.mode or 'dense'), None
    if args.config:
        from ..config import ConfigError

        try:
            settings, template = _template_for(args.config)
        except ConfigError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    try:
        records, bad, total = validate_file(args.jsonl, settings, template)
    except RecordError as exc:  # an empty file: there is nothing to train on
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'{args.jsonl}: {records} records, {bad} with problems, {total} problems in all')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
