"""Evaluate a trained checkpoint on the run's validation records.

    python -m src.eval --config configs/x.yaml --checkpoint output/x/checkpoint-500 [--limit N] [--visualize K]

Reads the records and checks them (before the model loads), generates greedy answers in batches, scores them
(``src/eval/metrics.py``), and writes into ``--output`` (default ``<checkpoint>/eval``): ``predictions.jsonl`` (one
answer per record), ``eval_report.json`` (overall, per dataset, per class, per sample) and, with ``--visualize K``,
``pictures/``: the K lowest-scoring samples drawn and ``pictures/index.html`` listing them worst first.
``--predictions FILE`` scores answers saved by an earlier evaluation instead of generating.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..config import ConfigError, ProjectConfig, load_and_validate
from ..config.stage_outputs import resolve_stage_outputs
from ..datasets.builders import coords_of
from ..datasets.contract import RecordError
from ..run.allocator import tune_allocator
from .errors import EvalError
from .generate import Generation, checkpoint_kind, generate, load_engine
from .metrics import score_dense, score_summary
from .parse import parse_dense
from .report import build_report, report_tables
from .samples import EvalSample, eval_datasets, load_samples

PREDICTIONS = 'predictions.jsonl'
REPORT = 'eval_report.json'
TRAINING_FILES = ('trainer_state.json', 'args.json')
"""What a folder a training run (or ``swift export``) wrote holds, and a downloaded model does not: results go into
its ``eval/`` unless ``--output`` says otherwise."""


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog='python -m src.eval', description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='the YAML config the checkpoint was trained with')
    parser.add_argument('--checkpoint', required=True, help='a checkpoint folder: an adapter or a full model')
    parser.add_argument('--limit', type=int, help='evaluate only the first N records')
    parser.add_argument('--visualize', type=int, default=0, metavar='K', help='draw the K lowest-scoring samples')
    parser.add_argument('--output', help='where to write the results (default: <checkpoint>/eval)')
    parser.add_argument('--batch-size', type=int, default=8, help='samples generated together (default 8)')
    parser.add_argument('--max-new-tokens', type=int,
                        help='token limit of an answer (default: what the template max_length leaves)')
    parser.add_argument('--predictions', help=f'score the answers in this {PREDICTIONS} instead of generating')
    parser.add_argument('--font', help='a .ttf / .otf font for the pictures\' labels (default: DejaVu Sans; name one '
                                       'with the labels\' characters, e.g. Noto Sans CJK for Chinese)')
    flags = parser.parse_args(argv)
    for name in ('limit', 'batch_size', 'max_new_tokens'):
        value = getattr(flags, name)
        if value is not None and value <= 0:
            parser.error(f'--{name.replace("_", "-")} must be a positive integer, got {value}')
    if flags.visualize < 0:
        parser.error(f'--visualize must be 0 or more, got {flags.visualize}')
    return flags


def check_writable(folder: Path, what: str) -> None:
    """The results folder can be created and written, checked before the model loads and generates (an hour's
    generation is not lost to a typo or a read-only disk)."""
    try:
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(f'{folder} is a file')
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / '.write_probe'
        probe.write_bytes(b'')
        probe.unlink()
    except OSError as exc:
        raise EvalError(f'{what}: cannot write the results into {folder}: {exc.strerror or exc}') from None


def check_lengths(cfg: ProjectConfig, limit: int | None) -> None:
    """The record check with training's template (the processor only, before the model loads): a record whose
    encoded length or image sizing training would refuse (over `max_length`, an aspect ratio past 200) stopped the
    generation midway with the template's traceback, and the answers so far were lost."""
    from ..datasets.record_check import check_datasets
    from ..datasets.validate import template_for

    _, template = template_for(cfg)
    check_datasets(eval_datasets(cfg, limit, template))


def read_predictions(path: Path, samples: list[EvalSample]) -> tuple[list[str], list[str | None]]:
    """Answers saved by an earlier evaluation, checked to be for the same records in the same order."""
    if not path.is_file():
        raise EvalError(f'--predictions {path}: file not found')
    rows = []
    try:
        lines = path.read_text(encoding='utf-8').splitlines()
    except UnicodeDecodeError as exc:
        raise EvalError(f'--predictions {path}: not UTF-8 text ({exc.reason}); give the {PREDICTIONS} an earlier '
                        'evaluation wrote') from None
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalError(f'{path}:{number}: not a JSON line ({exc.msg}); give the {PREDICTIONS} an earlier '
                            'evaluation wrote') from None
        if not isinstance(row, dict):
            raise EvalError(f'{path}:{number}: expected an object with `where` and `prediction`, got '
                            f'{type(row).__name__}; give the {PREDICTIONS} an earlier evaluation wrote')
        rows.append(row)
    if len(rows) != len(samples):
        raise EvalError(f'--predictions {path}: {len(rows)} answers for {len(samples)} records; evaluate with the '
                          'same --limit as the run that wrote it')
    for line, (row, sample) in enumerate(zip(rows, samples), 1):
        if row.get('where') != sample.where or not isinstance(row.get('prediction'), str):
            raise EvalError(f'{path}:{line}: expected the answer to {sample.where}, got {row.get("where")!r}')
    return [row['prediction'] for row in rows], [row.get('finish_reason') for row in rows]


def main(config: str | Path, checkpoint: str | Path, limit: int | None = None, visualize: int = 0,
         output: str | Path | None = None, batch_size: int = 8, max_new_tokens: int | None = None,
         predictions: str | Path | None = None, font: str | Path | None = None) -> dict[str, Any]:
    """Run the evaluation; returns the report (also written to ``<output>/eval_report.json``)."""
    from .draw import FontError, LabelFont

    try:
        label_font = LabelFont.choose(font)
    except FontError as exc:
        raise EvalError(str(exc)) from None
    cfg = load_and_validate(config)
    for warning in cfg.warnings:
        print(f'warning: {warning}', file=sys.stderr, flush=True)
    for notice in resolve_stage_outputs(cfg):
        print(notice, file=sys.stderr, flush=True)
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise EvalError(f'--checkpoint {checkpoint}: folder not found')
    if not predictions:
        checkpoint_kind(checkpoint)
    print(tune_allocator(), file=sys.stderr, flush=True)
    samples = load_samples(cfg, limit)
    if not output and not any((checkpoint / name).is_file() for name in TRAINING_FILES):
        raise EvalError(f'--checkpoint {checkpoint} is a model folder, not one a training run wrote (no '
                        f'{" or ".join(TRAINING_FILES)}): pass --output DIR, so that the results are not written '
                        'into the model\'s own folder (it may be shared, or the Hugging Face cache)')
    out = Path(output) if output else checkpoint / 'eval'
    check_writable(out, '--output' if output else f'--checkpoint {checkpoint} (results go to its eval/ folder)')
    mode, coords = cfg.custom.mode, coords_of(cfg)

    if predictions:
        texts, reasons = read_predictions(Path(predictions), samples)
    else:
        check_lengths(cfg, limit)
        engine = load_engine(cfg, checkpoint, batch_size)
        with open(out / PREDICTIONS, 'w', encoding='utf-8') as f:  # written as they come: a stop keeps them

            def keep(chunk: list[EvalSample], answers: list[Generation]) -> None:
                for sample, answer in zip(chunk, answers):
                    f.write(json.dumps({'where': sample.where, 'prediction': answer.text,
                                        'finish_reason': answer.finish_reason}, ensure_ascii=False) + '\n')
                f.flush()

            generations = generate(engine, samples, max_new_tokens, keep)
        texts, reasons = [g.text for g in generations], [g.finish_reason for g in generations]

    if mode == 'summary':
        scores = [score_summary(text, s.reference) for s, text in zip(samples, texts)]
    else:
        scores = [score_dense(parse_dense(text, s.width, s.height, coords), s.objects, s.width, s.height)
                  for s, text in zip(samples, texts)]
    report = build_report(mode, samples, texts, reasons, scores)
    report.update(config=str(cfg.source), checkpoint=str(checkpoint.resolve()))
    (out / REPORT).write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding='utf-8')
    print(report_tables(report), flush=True)
    print(f'report: {out / REPORT}', flush=True)
    if visualize:
        from .pictures import write_pictures

        page = write_pictures(out / 'pictures', samples, texts, scores, visualize, mode, coords, label_font)
        print(f'pictures: {page}', flush=True)
    return report


def cli(argv: list[str] | None = None) -> int:
    flags = parse_cli(argv)
    try:
        main(flags.config, flags.checkpoint, flags.limit, flags.visualize, flags.output, flags.batch_size,
             flags.max_new_tokens, flags.predictions, flags.font)
    except (ConfigError, EvalError, RecordError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    return 0
