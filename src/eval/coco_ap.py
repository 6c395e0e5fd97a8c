"""COCO-style box AP of dense answers, computed by pycocotools' ``COCOeval`` (the implementation detection papers
report), so the figures compare with a detector's.

Only boxes take part: the ``bbox_2d`` objects of the answers and of the records (polygons and lines are scored by
the F1 metrics alone). Classes are descriptions after ``normalize_desc``, as in the F1 metrics. COCO averages over
the classes that have ground truth, so a box of a class the data never has does not lower AP (the F1 metrics count
it as a false positive).

**Scores.** A generated answer carries no confidence, so every box is scored 1.0. AP is then the area under the
precision-recall curve of the boxes taken in a fixed order, not ranked by confidence: ``COCOeval`` sorts with a stable
sort, so ties fall in image order (the evaluation file's order), then in the order the model wrote the boxes. Read it
as a single operating point's curve, next to F1; a detector with real scores would rank its best boxes first and
score higher for the same boxes.

``maxDets`` is 1, 10 and at least 100 (raised to the most boxes any image has), so a dense image's boxes are never
cut at COCO's 100.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Any

import numpy as np

Box = tuple[float, float, float, float]
"""x1, y1, x2, y2 in pixels."""


@dataclass(frozen=True)
class ImageBoxes:
    """The boxes of one image: (class, box) of the answer in the order written, and of the ground truth."""

    predicted: tuple[tuple[str, Box], ...] = ()
    truth: tuple[tuple[str, Box], ...] = ()


def _xywh(box: Box) -> list[float]:
    x1, y1, x2, y2 = box
    return [x1, y1, max(0.0, x2 - x1), max(0.0, y2 - y1)]


def box_ap(images: list[ImageBoxes]) -> dict[str, Any] | None:
    """``AP@[.5:.95]``, ``AP50``, ``AP75`` and per-class ``AP@[.5:.95]``; None when no image has a ground-truth box."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    classes = sorted({name for image in images for name, _ in image.truth})
    if not classes:
        return None
    category = {name: i + 1 for i, name in enumerate(classes)}
    truth: list[dict[str, Any]] = []
    for i, image in enumerate(images):
        for name, box in image.truth:
            x, y, w, h = _xywh(box)
            truth.append({'id': len(truth) + 1, 'image_id': i + 1, 'category_id': category[name],
                          'bbox': [x, y, w, h], 'area': w * h, 'iscrowd': 0})
    predicted = [{'image_id': i + 1, 'category_id': category[name], 'bbox': _xywh(box), 'score': 1.0}
                 for i, image in enumerate(images) for name, box in image.predicted if name in category]
    if not predicted:
        return {'AP@[.5:.95]': 0.0, 'AP50': 0.0, 'AP75': 0.0, 'per_class': {name: 0.0 for name in classes}}
    most = max(sum(name in category for name, _ in image.predicted) for image in images)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = {'images': [{'id': i + 1} for i in range(len(images))], 'annotations': truth,
                      'categories': [{'id': c, 'name': name} for name, c in category.items()]}
        gt.createIndex()
        evaluation = COCOeval(gt, gt.loadRes(predicted), 'bbox')
        evaluation.params.maxDets = [1, 10, max(100, most)]
        evaluation.evaluate()
        evaluation.accumulate()
    precision = evaluation.eval['precision'][:, :, :, 0, -1]  # IoU x recall x class, all areas, most boxes

    def mean(values: np.ndarray) -> float:
        values = values[values > -1]
        return float(values.mean()) if values.size else 0.0

    return {'AP@[.5:.95]': mean(precision), 'AP50': mean(precision[0]), 'AP75': mean(precision[5]),
            'per_class': {name: mean(precision[:, :, category[name] - 1]) for name in classes}}
