"""The records of a run, checked before any model loads: every problem that needs no model.

Parsing, the record contract (per kind, per `custom.mode`), media files that are missing or do not open as images,
inline bytes that are not an image, sizes that disagree with the image file: all of this is known from the records and
the image headers. ``check_run_records`` reads every training and validation record of a config that way and raises
one ``RecordError`` listing the problems before the entrypoint loads a model (minutes on a large checkpoint); what
needs the template (the encoded length) is checked after it loads, by ``custom.encode_check``'s encode pass.
"""
from __future__ import annotations

import dataclasses
from collections import Counter
from dataclasses import dataclass
from typing import Any

from ..config.fusion import KEEP_AUGMENTATION
from .builders import BuildSettings
from .contract import RecordError
from .dense_caption import DenseCaptionDataset
from .record_check import SHOWN, FileReport, check_file

SPLITS = ('training', 'validation')


def run_datasets(cfg: Any) -> list[tuple[str, DenseCaptionDataset]]:
    """Every file of records a run reads, with its split (``training``, ``validation``; each fusion source with its own
    prompts), as datasets that read records without a template and without augmentation: the records as written."""
    settings = BuildSettings.from_config(cfg)
    limit = cfg.custom.sample_limit
    if cfg.fusion is None:
        paths = [(SPLITS[0], cfg.custom.train_jsonl), (SPLITS[1], cfg.custom.val_jsonl)]
        return [(split, DenseCaptionDataset(p, None, limit, settings)) for split, p in paths if p]
    datasets = []
    for source in cfg.fusion.sources:
        own = dataclasses.replace(settings, prompts={**settings.prompts, **source.prompts})
        evaluated = source.name in cfg.fusion.eval_sources and source.val_jsonl is not None
        datasets += [(split, DenseCaptionDataset(p, None, limit, own, label=source.name))
                     for split, p in zip(SPLITS, (source.train_jsonl, source.val_jsonl if evaluated else None))
                     if p is not None]
    return datasets


@dataclass
class RecordCounts:
    """What the records of one split of a run are: how many, how many carry no image or video (text only), how many
    a video, how many an image, how many are chat records; each with the ``file:line`` of its first record."""

    split: str
    records: int = 0
    text_only: int = 0
    first_text_only: str | None = None
    videos: int = 0
    first_video: str | None = None
    images: int = 0
    first_image: str | None = None
    chat: int = 0
    first_chat: str | None = None
    prompt_keys: dict[str, int] = dataclasses.field(default_factory=dict)
    """Geometry records per `custom.dataset_prompts` key they are looked up by."""
    chat_only_sources: list[str] = dataclasses.field(default_factory=list)
    """The fusion sources of this split whose records are all chat records."""

    def add(self, report: FileReport) -> None:
        def first(indices: list[int], known: str | None) -> str | None:
            return report.dataset.where(indices[0]) if known is None and indices else known

        self.records += len(report.dataset)
        self.text_only += len(report.text_only)
        self.videos += len(report.videos)
        self.images += len(report.images)
        self.chat += len(report.chat)
        self.first_text_only = first(report.text_only, self.first_text_only)
        self.first_video = first(report.videos, self.first_video)
        self.first_image = first(report.images, self.first_image)
        self.first_chat = first(report.chat, self.first_chat)
        self.prompt_keys = dict(Counter(self.prompt_keys) + Counter(report.prompt_keys))
        if report.dataset.label and 0 < len(report.chat) == len(report.dataset):
            self.chat_only_sources.append(report.dataset.label)


def check_run_records(cfg: Any) -> list[RecordCounts]:
    """Read every record of the run as training will (``record_check``: on every core, the verdict cached next to
    the data); raise one ``RecordError`` listing the problems (the first ``SHOWN`` in full). Returns what the records
    of each split are (the splits the run has)."""
    checked = [(split, check_file(dataset)) for split, dataset in run_datasets(cfg)]
    reports = [report for _, report in checked]
    counts = {split: RecordCounts(split) for split, _ in checked}
    for split, report in checked:
        counts[split].add(report)
    problems = [line for report in reports for line in report.lines()]
    if problems:
        shown = '\n  '.join(problems[:SHOWN])
        more = f'\n  ... and {len(problems) - SHOWN} more' if len(problems) > SHOWN else ''
        bad = sum(len({idx for idx, _ in r.problems}) for r in reports)
        records = sum(len(r.dataset) for r in reports)
        raise RecordError(f'{bad} of {records} records cannot train (checked before loading the model; '
                          f'`python -m src.datasets.validate FILE --config {cfg.source}` lists every problem):\n  '
                          f'{shown}{more}')
    return list(counts.values())


# The settings that shape how the project builds a geometry record (images + objects / summary) into a conversation;
# a chat record (`messages`) trains as written, so with only chat records they would do nothing.
GEOMETRY_SETTINGS = (
    ('custom.mode', lambda cfg: cfg.custom.mode != 'dense'),
    ('custom.prompts', lambda cfg: cfg.custom.prompts),
    ('custom.dataset_prompts', lambda cfg: cfg.custom.dataset_prompts),
    ('custom.summary_prompt_variants', lambda cfg: cfg.custom.summary_prompt_variants),
    ('custom.augmentation', lambda cfg: cfg.augmentation is not None),
)


def ignored_settings_problems(cfg: Any, splits: list[RecordCounts]) -> list[str]:
    """The geometry-record settings of ``cfg`` that the training records would ignore, one problem each; none when
    every setting given applies to some record. Checked: the run's settings when every training record is a chat
    record, a fusion source's own `prompts` / `augmentation` when all of its records are, and each
    `custom.dataset_prompts` key that no geometry record is looked up by (a typo, or a source name under online
    fusion, where records carry no `_fusion_source`)."""
    counts = next((c for c in splits if c.split == SPLITS[0]), None)
    if counts is None:
        return []
    used = {key for c in splits for key in c.prompt_keys}  # validation records are prompted the same way
    problems = []
    all_chat = 0 < counts.chat == counts.records
    if all_chat and (given := [key for key, is_set in GEOMETRY_SETTINGS if is_set(cfg)]):
        problems.append(f'{", ".join(f"`{key}`" for key in given)}: shape(s) how geometry records (images with '
                        f'`objects` or a `summary`) become conversations, and all {counts.records} training records '
                        f'are chat records (`messages`, the first at {counts.first_chat}), which train as written, '
                        'so nothing would use them. Remove them, or convert the records to geometry records '
                        '(docs/data/DATA_JSONL_CONTRACT.md)')
    for source in cfg.fusion.sources if cfg.fusion is not None and not all_chat else ():
        own = [key for key, is_set in (('prompts', bool(source.prompts)),
                                       ('augmentation', source.augmentation is not KEEP_AUGMENTATION
                                        and source.augmentation is not None)) if is_set]
        if source.name in counts.chat_only_sources and own:
            problems.append(f'fusion source `{source.name}`: {", ".join(f"`{key}`" for key in own)} shape(s) '
                            f'geometry records, and all records of {source.train_jsonl} are chat records, which '
                            'train as written. Remove them from the source')
    unmatched = [key for key in cfg.custom.dataset_prompts or {} if key not in used]
    if unmatched and not all_chat:
        known = ', '.join(sorted(used)) or 'none: no geometry record has a `dataset` field'
        online = (' Under online fusion a source\'s prompt goes in the source itself (`prompts:` in '
                  'custom.fusion_config).' if cfg.fusion is not None else '')
        problems.append(f'`custom.dataset_prompts`: {", ".join(f"`{key}`" for key in unmatched)} matches no '
                        'geometry record (a prompt is looked up by a record\'s `_fusion_source`, then its `dataset`; '
                        f'the names the records have: {known}), so it would never be used.{online}')
    return [f'{cfg.source}: {problem}' for problem in problems]
