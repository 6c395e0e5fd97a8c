"""Detection-style metrics for dense answers and the summary rewards as metrics; pure functions of parsed answers.

Dense answers, per image:

- **per class** (classes are descriptions after ``normalize_desc``): predictions and ground truth of one class are
  matched one to one by the Hungarian algorithm, maximising the number of pairs whose similarity
  (``geometry.similarity_matrix``: box IoU, polygon mask IoU, polyline distance) reaches the threshold. Matched pairs
  are true positives, unmatched predictions false positives, unmatched ground truth false negatives; a confused class
  is one of each.
- **descriptions**: all predictions are matched to all ground truth at 0.5 regardless of class; of the matched pairs,
  ``desc_exact`` is the share whose ``desc`` is identical and ``desc_normalized`` the share equal after
  ``normalize_desc``.

- **per geometry** (``bbox_2d``, ``poly``, ``line``): the same counts split by the kind of the objects (a pair
  always joins two objects of one kind), so a drift of polygons or lines shows apart from the boxes.

Counts add up over images, datasets and classes; precision, recall and F1 are computed from the sums (micro
average) at 0.5 and averaged over the thresholds 0.5:0.05:0.95. With nothing predicted, precision is 1 if there was
nothing to find and 0 otherwise; recall likewise with nothing to find. Each group of images also gets COCO box AP
(``coco_ap``: pycocotools over the boxes, with the score convention stated there).
"""
from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
from scipy.optimize import linear_sum_assignment

from ..datasets.contract import GEOMETRY_KEYS
from ..rewards.summary import SCORERS, parse_summary
from .coco_ap import ImageBoxes, box_ap
from .geometry import similarity_matrix
from .parse import DenseAnswer, Obj

THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
"""IoU thresholds 0.5:0.05:0.95; the first one is the headline threshold."""


def normalize_desc(desc: str) -> str:
    """Unicode NFC, case-folded, whitespace collapsed: ``'Traffic  Light'`` and ``'traffic light'`` are one class."""
    return re.sub(r'\s+', ' ', unicodedata.normalize('NFC', desc)).strip().casefold()


def match(similarity: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """One-to-one (prediction, ground truth) pairs: as many pairs with similarity >= threshold as possible, and among
    those assignments the one with the largest total similarity."""
    allowed = similarity >= threshold
    if not allowed.any():
        return []
    # A pair is worth more than any similarity total of fewer pairs, so the count is maximised first.
    weight = np.where(allowed, max(similarity.shape) + 1 + similarity, 0.0)
    rows, cols = linear_sum_assignment(weight, maximize=True)
    return [(int(r), int(c)) for r, c in zip(rows, cols) if allowed[r, c]]


@dataclass
class Counts:
    """True positives per threshold, and how many predictions and ground-truth objects there were."""

    tp: np.ndarray = field(default_factory=lambda: np.zeros(len(THRESHOLDS), dtype=int))
    pred: int = 0
    gt: int = 0

    def __add__(self, other: 'Counts') -> 'Counts':
        return Counts(self.tp + other.tp, self.pred + other.pred, self.gt + other.gt)

    def metrics(self) -> dict[str, float | int]:
        precision = self.tp / self.pred if self.pred else np.full(len(THRESHOLDS), float(self.gt == 0))
        recall = self.tp / self.gt if self.gt else np.full(len(THRESHOLDS), float(self.pred == 0))
        total = precision + recall
        f1 = np.divide(2 * precision * recall, total, out=np.zeros_like(total), where=total > 0)
        return {
            'gt': self.gt,
            'pred': self.pred,
            'tp@0.5': int(self.tp[0]),
            'precision@0.5': float(precision[0]),
            'recall@0.5': float(recall[0]),
            'f1@0.5': float(f1[0]),
            'precision@[.5:.95]': float(precision.mean()),
            'recall@[.5:.95]': float(recall.mean()),
            'f1@[.5:.95]': float(f1.mean()),
        }


@dataclass
class DenseScore:
    """What one image contributes to the dense metrics."""

    per_class: dict[str, Counts]
    parsed: bool
    per_geometry: dict[str, Counts] = field(default_factory=dict)
    invalid: int = 0
    matched: int = 0
    """Class-agnostic pairs at 0.5."""
    desc_exact: int = 0
    desc_normalized: int = 0
    boxes: ImageBoxes = field(default_factory=ImageBoxes)
    """The image's boxes, for COCO AP over a group of images."""

    @property
    def total(self) -> Counts:
        return sum(self.per_class.values(), Counts())

    @property
    def score(self) -> float:
        """The image's F1 at 0.5, what the gallery sorts by."""
        return float(self.total.metrics()['f1@0.5'])


def score_dense(answer: DenseAnswer, gts: Iterable[Obj], width: int, height: int) -> DenseScore:
    preds, gts = list(answer.objects), list(gts)
    similarity = similarity_matrix(preds, gts, width, height)
    classes: dict[str, tuple[list[int], list[int]]] = defaultdict(lambda: ([], []))
    for i, p in enumerate(preds):
        classes[normalize_desc(p.desc)][0].append(i)
    for j, g in enumerate(gts):
        classes[normalize_desc(g.desc)][1].append(j)
    per_class = {}
    per_geometry = {kind: Counts(pred=sum(p.kind == kind for p in preds), gt=sum(g.kind == kind for g in gts))
                    for kind in GEOMETRY_KEYS}
    for name, (pi, gi) in classes.items():
        sub = similarity[np.ix_(pi, gi)]
        tp = np.zeros(len(THRESHOLDS), int)
        for t, threshold in enumerate(THRESHOLDS if pi and gi else ()):
            for r, _ in match(sub, threshold):
                tp[t] += 1
                per_geometry[preds[pi[r]].kind].tp[t] += 1
        per_class[name] = Counts(tp, len(pi), len(gi))
    pairs = match(similarity, THRESHOLDS[0]) if preds and gts else []
    boxes = ImageBoxes(*(tuple((normalize_desc(o.desc), o.coords) for o in objs if o.kind == 'bbox_2d')
                         for objs in (preds, gts)))
    return DenseScore(
        per_class, answer.parsed, per_geometry, answer.invalid, len(pairs),
        sum(preds[i].desc == gts[j].desc for i, j in pairs),
        sum(normalize_desc(preds[i].desc) == normalize_desc(gts[j].desc) for i, j in pairs), boxes)


def summarize_dense(scores: list[DenseScore]) -> dict[str, Any]:
    """Micro-averaged metrics of a group of images, overall and per class."""
    per_class: dict[str, Counts] = defaultdict(Counts)
    per_geometry: dict[str, Counts] = defaultdict(Counts)
    for s in scores:
        for name, counts in s.per_class.items():
            per_class[name] = per_class[name] + counts
        for kind, counts in s.per_geometry.items():
            per_geometry[kind] = per_geometry[kind] + counts
    matched = sum(s.matched for s in scores)
    ap = box_ap([s.boxes for s in scores]) or {}
    class_ap = ap.pop('per_class', {})
    return {
        'samples': len(scores),
        'parse_failure_rate': sum(not s.parsed for s in scores) / len(scores) if scores else 0.0,
        'invalid_objects': sum(s.invalid for s in scores),
        **sum(per_class.values(), Counts()).metrics(),
        'matched@0.5': matched,
        'desc_exact': sum(s.desc_exact for s in scores) / matched if matched else None,
        'desc_normalized': sum(s.desc_normalized for s in scores) / matched if matched else None,
        'AP@[.5:.95]': ap.get('AP@[.5:.95]'),
        'AP50': ap.get('AP50'),
        'AP75': ap.get('AP75'),
        'per_class': {name: {**per_class[name].metrics(), 'AP@[.5:.95]': class_ap.get(name)}
                      for name in sorted(per_class)},
        'per_geometry': {kind: per_geometry[kind].metrics() for kind in GEOMETRY_KEYS
                         if per_geometry[kind].gt or per_geometry[kind].pred},
    }


@dataclass
class SummaryScore:
    rewards: dict[str, float]
    parsed: bool

    @property
    def score(self) -> float:
        return self.rewards['summary_content_f1']


def score_summary(prediction: str, reference: str) -> SummaryScore:
    """Every summary reward of ``prediction`` against ``reference``; parsed: the counts (or 无关图片) could be read."""
    read = parse_summary(prediction)
    return SummaryScore({name: scorer(prediction, reference) for name, scorer in SCORERS.items()},
                        read.irrelevant or read.counts is not None)


def summarize_summary(scores: list[SummaryScore]) -> dict[str, Any]:
    n = len(scores)
    return {
        'samples': n,
        'parse_failure_rate': sum(not s.parsed for s in scores) / n if n else 0.0,
        **{name: sum(s.rewards[name] for s in scores) / n if n else 0.0 for name in SCORERS},
    }
