"""The records of a run, checked before any model loads: every problem that needs no model.

Parsing, the record contract (per kind, per `custom.mode`), media files that are missing or do not open as images,
inline bytes that are not an image, sizes that disagree with the image file: all of this is known from the records and
the image headers. ``check_run_records`` reads every training and validation record of a config that way and raises
one ``RecordError`` listing the problems before the entrypoint loads a model (minutes on a large checkpoint); what
needs the template (the encoded length) is checked after it loads, by ``custom.encode_check``'s encode pass.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .builders import BuildSettings
from .contract import RecordError
from .dense_caption import DenseCaptionDataset
from .record_check import SHOWN, check_file


def run_datasets(cfg: Any) -> list[DenseCaptionDataset]:
    """Every file of records a run reads (training and validation; each fusion source with its own prompts), as
    datasets that read records without a template and without augmentation: the records as written."""
    settings = BuildSettings.from_config(cfg)
    limit = cfg.custom.sample_limit
    if cfg.fusion is None:
        paths = [cfg.custom.train_jsonl, cfg.custom.val_jsonl]
        return [DenseCaptionDataset(p, None, limit, settings) for p in paths if p]
    datasets = []
    for source in cfg.fusion.sources:
        own = dataclasses.replace(settings, prompts={**settings.prompts, **source.prompts})
        evaluated = source.name in cfg.fusion.eval_sources and source.val_jsonl is not None
        datasets += [DenseCaptionDataset(p, None, limit, own, label=source.name)
                     for p in (source.train_jsonl, source.val_jsonl if evaluated else None) if p is not None]
    return datasets


@dataclass
class RecordCounts:
    """What the records of a run are: how many, how many carry no image or video (text only), how many a video."""

    records: int = 0
    text_only: int = 0
    first_text_only: str | None = None
    """``file:line`` of the first text-only record."""
    videos: int = 0
    first_video: str | None = None
    """``file:line`` of the first record with a video."""


def check_run_records(cfg: Any) -> RecordCounts:
    """Read every record of the run as training will (``record_check``: on every core, the verdict cached next to
    the data); raise one ``RecordError`` listing the problems (the first ``SHOWN`` in full). Returns what the records
    are."""
    reports = [check_file(dataset) for dataset in run_datasets(cfg)]
    counts = RecordCounts(records=sum(len(r.dataset) for r in reports))
    for report in reports:
        counts.text_only += len(report.text_only)
        if report.text_only and counts.first_text_only is None:
            counts.first_text_only = report.dataset.where(report.text_only[0])
        counts.videos += len(report.videos)
        if report.videos and counts.first_video is None:
            counts.first_video = report.dataset.where(report.videos[0])
    problems = [line for report in reports for line in report.lines()]
    if problems:
        shown = '\n  '.join(problems[:SHOWN])
        more = f'\n  ... and {len(problems) - SHOWN} more' if len(problems) > SHOWN else ''
        bad = sum(len({idx for idx, _ in r.problems}) for r in reports)
        raise RecordError(f'{bad} of {counts.records} records cannot train (checked before loading the model; '
                          f'`python -m src.datasets.validate FILE --config {cfg.source}` lists every problem):\n  '
                          f'{shown}{more}')
    return counts
