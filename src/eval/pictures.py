"""``--visualize K``: the K worst samples drawn as ground truth beside prediction, and a gallery page listing them."""
from __future__ import annotations

from pathlib import Path

from tqdm import tqdm

from ..datasets.builders import load_image
from ..datasets.builders.coords import Coords
from .draw import GT_COLOR, PRED_COLOR, draw_objects, hex_color, side_by_side
from .gallery import GalleryItem, write_gallery
from .metrics import DenseScore, SummaryScore
from .parse import parse_dense
from .samples import EvalSample

MAX_TEXT = 600
"""Characters of an answer printed under a picture; the gallery page folds the whole answer under it."""


def _clip(text: str) -> str:
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT] + ' [...]'


def _details(score: DenseScore | SummaryScore) -> dict[str, str]:
    if isinstance(score, SummaryScore):
        return {'parsed': str(score.parsed), **{k: f'{v:.3f}' for k, v in score.rewards.items()}}
    total = score.total.metrics()
    return {'parsed': str(score.parsed), 'gt / pred / tp@0.5': f'{total["gt"]} / {total["pred"]} / {total["tp@0.5"]}',
            'invalid entries': str(score.invalid)}


def picture(sample: EvalSample, prediction: str, score: DenseScore | SummaryScore, mode: str, coords: Coords):
    image = load_image(sample.image)
    if mode == 'summary':
        return side_by_side([
            ('ground truth', draw_objects(image, sample.objects, GT_COLOR), sample.reference.split('\n')),
            (f'prediction (content F1 {score.score:.2f})', draw_objects(image, (), PRED_COLOR),
             _clip(prediction).split('\n')),
        ])
    predicted = parse_dense(prediction, sample.width, sample.height, coords)
    verdict = f'F1@0.5 {score.score:.2f}' if predicted.parsed else 'PARSE FAILURE'
    return side_by_side([
        ('ground truth', draw_objects(image, sample.objects, GT_COLOR), [f'{len(sample.objects)} objects']),
        (f'prediction ({verdict})', draw_objects(image, predicted.objects, PRED_COLOR),
         [f'{len(predicted.objects)} objects'] if predicted.parsed else [_clip(prediction)]),
    ])


def write_pictures(folder: Path, samples: list[EvalSample], predictions: list[str],
                   scores: list[DenseScore | SummaryScore], count: int, mode: str, coords: Coords) -> Path:
    """PNGs of the ``count`` lowest-scoring samples and ``folder/index.html``; returns the page's path."""
    worst = sorted(range(len(samples)), key=lambda i: scores[i].score)[:count]
    folder.mkdir(parents=True, exist_ok=True)
    items = []
    for rank, i in enumerate(tqdm(worst, desc='drawing', unit='img'), 1):
        name = f'{rank:04d}.png'
        picture(samples[i], predictions[i], scores[i], mode, coords).save(folder / name)
        items.append(GalleryItem(name, f'{samples[i].dataset}: {samples[i].where}', scores[i].score,
                                 _details(scores[i]), predictions[i]))
    legend = {'ground truth': hex_color(GT_COLOR), 'prediction': hex_color(PRED_COLOR)}
    return write_gallery(folder, items, f'{len(items)} lowest-scoring samples', legend)
