"""Check every record of a JSONL file and report all problems at once.

    python -m src.datasets.validate FILE.jsonl [--config x.yaml | --mode summary]

Checks the contract (fields, geometry inside the image and well formed, `width` x `height` equal to the image file,
pixel coordinates), that each image exists, opens, holds 8-bit samples and is complete (its end marker; `--deep`
decodes every image), the placeholders of chat records, and then builds each record exactly as training does; with
--config, with that config's model, mode, prompts, video sampling and length limit (the encoded length is counted
from the image sizes and the tokenizer: `src/datasets/record_check.py`), so a record passes here exactly when it
trains. The work runs on every CPU (`--workers`) and the verdict is cached next to the data (`.toolkit_check/`).
Without --config, records are checked for `--mode` (default
`dense`: every geometry record needs objects to list). Lines that are not UTF-8 or not JSON are reported like any
other problem. Prints `file:line: problem` lines and a summary; exits 1 on any problem or on a file with no records.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .builders import BuildSettings
from .contract import MODES, RecordError
from .dense_caption import DenseCaptionDataset
from .record_check import check_file


def template_for(cfg: Any) -> tuple[BuildSettings, Any]:
    """The build settings of a validated config and an ms-swift template set up as training sets it up (length
    limit, `truncation_strategy: raise`, video sampling), so that encoding a record here fails exactly when it would
    there. Only the processor loads, not the model."""
    from swift.model import get_processor
    from swift.template import get_template

    from ..config import ConfigError
    from ..config.remote_code import remote_code_problems
    from ..swift_seams import remote_code_only_for, set_video_sampling
    from ..testing.tiny_model import ensure_tiny_model

    ensure_tiny_model(cfg.model['model'], cfg.custom.build_tiny_model, cfg.model.get('model_type'))
    settings = BuildSettings.from_config(cfg)
    trusted = cfg.settings.trust_remote_code
    if problems := remote_code_problems(cfg.model['model'], 'model.trust_remote_code', trusted):
        raise ConfigError(problems)
    set_video_sampling(cfg.video.environment())
    with remote_code_only_for([cfg.model['model']] if trusted else []):
        processor = get_processor(cfg.model['model'], model_type=cfg.model.get('model_type'))
    template = get_template(processor, max_length=cfg.template.get('max_length'), truncation_strategy='raise',
                            max_pixels=cfg.template.get('max_pixels'))
    template.set_mode('train')
    return settings, template


def validate_file(path: Path, settings: BuildSettings, template: Any = None, out=None, deep: bool = False,
                  workers: int | None = None) -> tuple[int, int, int]:
    """Print every problem of ``path`` (to ``out``, default stdout); returns (records, bad records, problems)."""
    out = out or sys.stdout
    report = check_file(DenseCaptionDataset(path, template, settings=settings), deep, workers)
    for line in report.lines():
        print(line, file=out)
    if report.cached:
        print(f'{path}: verdict read from the check cache (the file, its images and the settings are unchanged)',
              file=sys.stderr)
    return len(report.dataset), len({idx for idx, _ in report.problems}), len(report.problems)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m src.datasets.validate', description=__doc__.split('\n')[0])
    parser.add_argument('jsonl', type=Path, help='the JSONL file to check')
    parser.add_argument('--config', help='also check encoded lengths with this training config')
    parser.add_argument('--mode', choices=MODES, help='the training mode the records are for, without --config '
                                                      '(default: dense)')
    parser.add_argument('--deep', action='store_true', help='decode every image and encode every record in full, as '
                                                            'training does (slower; the default reads image headers '
                                                            'and end markers and counts tokens from image sizes)')
    parser.add_argument('--workers', type=int, default=None, help='processes checking records (default: the '
                                                                  'CPUs available, at most 8)')
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
            from ..config import load_and_validate

            settings, template = template_for(load_and_validate(args.config))
        except ConfigError as exc:
            print(f'error: {exc}', file=sys.stderr)
            return 2
    try:
        records, bad, total = validate_file(args.jsonl, settings, template, deep=args.deep, workers=args.workers)
    except RecordError as exc:  # an empty file: there is nothing to train on
        print(f'error: {exc}', file=sys.stderr)
        return 1
    print(f'{args.jsonl}: {records} records, {bad} with problems, {total} problems in all')
    return 1 if total else 0


if __name__ == '__main__':
    sys.exit(main())
