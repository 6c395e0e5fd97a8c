"""The validation records of a run as evaluation samples: the request the model answers, and what it should answer.

The records are read exactly as training reads its validation set (``custom.val_jsonl``, or the fusion config's
``eval_sources`` with their own prompts), through the same builders, so the prompt matches the one trained on. Every
record is checked before the model is loaded: a broken record stops the run with its file and line.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..config import ProjectConfig
from ..datasets.builders import BuildSettings, coords_of, first_image, load_image
from ..datasets.builders.coords import Coords
from ..datasets.contract import RecordError, is_chat_record
from ..datasets.dense_caption import DenseCaptionDataset
from ..datasets.fusion import FusionEvalDataset
from ..rewards.summary import parse_summary
from .parse import Obj, parse_dense, record_objects


@dataclass(frozen=True)
class EvalSample:
    where: str
    """``file:line`` of the record."""
    dataset: str
    request: dict[str, Any]
    """ms-swift template inputs without the answer: ``messages`` (and ``images`` for records in ms-swift's form)."""
    reference: str
    """The answer the model was trained to give."""
    image: str
    """Path or data URL of the record's image, for the pictures."""
    width: int
    height: int
    objects: tuple[Obj, ...] = ()
    """Ground-truth objects in pixels: a geometry record's, or a chat record's dense answer read back."""


def eval_datasets(cfg: ProjectConfig, limit: int | None = None, template: Any = None) -> list[DenseCaptionDataset]:
    """The datasets training validates on. Their records are read, not encoded; with ``template`` (training's) the
    record check also measures each one's encoded length and image sizing, as training does."""
    settings = BuildSettings.from_config(cfg)
    if cfg.fusion is not None and cfg.fusion.eval_sources:
        return list(FusionEvalDataset(cfg.fusion, template, settings, limit).datasets)
    if not cfg.custom.val_jsonl:
        raise RecordError(f'{cfg.source}: evaluation reads `custom.val_jsonl` (or the fusion config\'s '
                          '`eval_sources`); the config sets neither')
    return [DenseCaptionDataset(cfg.custom.val_jsonl, template, limit, settings)]


def load_samples(cfg: ProjectConfig, limit: int | None = None) -> list[EvalSample]:
    """Every evaluated record as a sample (the first ``limit`` records when set), references checked."""
    samples = []
    for dataset in eval_datasets(cfg, limit):
        for idx in range(len(dataset)):
            samples.append(_sample(dataset, idx, cfg.custom.mode, coords_of(cfg)))
    return samples[:limit]


def _sample(dataset: DenseCaptionDataset, idx: int, mode: str, coords: Coords) -> EvalSample:
    where = dataset.where(idx)
    record = dataset.record(idx)
    inputs = dataset.inputs(idx)  # validated: a broken record raises with its file and line
    *request, answer = inputs['messages']
    if not isinstance(answer['content'], str):
        raise RecordError(f'{where}: the assistant answer must be text to be evaluated')
    image = first_image(inputs)
    if image is None:
        raise RecordError(f'{where}: evaluation needs an image in every record (video and text-only records are '
                          'not evaluated)')
    if image.startswith(('http://', 'https://')):
        raise RecordError(f'{where}: evaluation needs local images (it measures and draws them); download {image} '
                          'first')
    label = dataset.label or record.get('_fusion_source') or record.get('dataset') or dataset.path.stem
    if is_chat_record(record):
        width, height = load_image(image).size
    else:
        width, height = record['width'], record['height']
    objects = () if is_chat_record(record) else record_objects(record)
    if mode == 'summary':
        if not parse_summary(answer['content']).exact:
            raise RecordError(f'{where}: the reference summary does not follow the summary format '
                              f'(docs/training/grpo.md): {answer["content"]!r:.120}')
    elif is_chat_record(record):
        parsed = parse_dense(answer['content'], width, height, coords)
        if not parsed.parsed or parsed.invalid:
            raise RecordError(f'{where}: the assistant answer is not a dense answer (a JSON list of {{"desc", '
                              f'<geometry>}} in {coords.format} coordinates): {answer["content"]!r:.120}')
        objects = parsed.objects
        flat = [o for o in objects
                if o.kind == 'bbox_2d' and (o.coords[2] <= o.coords[0] or o.coords[3] <= o.coords[1])]
        if flat:  # a geometry record's box is refused for this; read back from a chat answer it was scored as missed
            raise RecordError(f'{where}: the reference box of {flat[0].desc!r} has no area in the answer '
                              f'({answer["content"]!r:.120}): no prediction could match it, so a perfect answer would '
                              'score below 1; fix the box or leave the record out of the validation set')
    return EvalSample(where, label, {**inputs, 'messages': request}, answer['content'], image, width, height, objects)
