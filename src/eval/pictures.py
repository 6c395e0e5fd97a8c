"""``--visualize K``: the K worst samples drawn as ground truth beside prediction, and a gallery page listing them."""
from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image
from tqdm import tqdm

from ..datasets.builders import load_image
from ..datasets.builders.coords import Coords
from .draw import GT_COLOR, PRED_COLOR, LabelFont, draw_objects, hex_color, missing_glyphs_warning, side_by_side
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


def picture(sample: EvalSample, prediction: str, score: DenseScore | SummaryScore, mode: str, coords: Coords,
            font: LabelFont) -> tuple[Image.Image, list[str]]:
    """The picture of one sample, and the texts drawn on it."""
    image = load_image(sample.image)
    truth = [obj.desc for obj in sample.objects]
    if mode == 'summary':
        reference, answer = sample.reference.split('\n'), _clip(prediction).split('\n')
        return side_by_side([
            ('ground truth', draw_objects(image, sample.objects, GT_COLOR, font), reference),
            (f'prediction (content F1 {score.score:.2f})', draw_objects(image, (), PRED_COLOR, font), answer),
        ], font), truth + reference + answer
    predicted = parse_dense(prediction, sample.width, sample.height, coords)
    verdict = f'F1@0.5 {score.score:.2f}' if predicted.parsed else 'PARSE FAILURE'
    caption = [f'{len(predicted.objects)} objects'] if predicted.parsed else [_clip(prediction)]
    return side_by_side([
        ('ground truth', draw_objects(image, sample.objects, GT_COLOR, font), [f'{len(sample.objects)} objects']),
        (f'prediction ({verdict})', draw_objects(image, predicted.objects, PRED_COLOR, font), caption),
    ], font), truth + [obj.desc for obj in predicted.objects] + caption


def write_pictures(folder: Path, samples: list[EvalSample], predictions: list[str],
                   scores: list[DenseScore | SummaryScore], count: int, mode: str, coords: Coords,
                   font: LabelFont) -> Path:
    """PNGs of the ``count`` lowest-scoring samples and ``folder/index.html``; returns the page's path. Pictures an
    earlier, larger ``--visualize`` left are removed first, so the folder shows this evaluation only."""
    worst = sorted(range(len(samples)), key=lambda i: scores[i].score)[:count]
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob('[0-9][0-9][0-9][0-9].png'):
        stale.unlink()
    items, drawn = [], []
    for rank, i in enumerate(tqdm(worst, desc='drawing', unit='img'), 1):
        name = f'{rank:04d}.png'
        image, texts = picture(samples[i], predictions[i], scores[i], mode, coords, font)
        image.save(folder / name)
        drawn += texts
        items.append(GalleryItem(name, f'{samples[i].dataset}: {samples[i].where}', scores[i].score,
                                 _details(scores[i]), predictions[i]))
    if (warning := missing_glyphs_warning(font, drawn)) is not None:
        print(warning, file=sys.stderr, flush=True)
    legend = {'ground truth': hex_color(GT_COLOR), 'prediction': hex_color(PRED_COLOR)}
    return write_gallery(folder, items, f'{len(items)} lowest-scoring samples', legend)
