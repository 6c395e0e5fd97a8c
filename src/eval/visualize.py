"""Draw the ground truth of JSONL records, to look at the data before training on it.

    python -m src.eval.visualize FILE.jsonl --n 20 [--config x.yaml [--epoch E]] [--out DIR]

Writes one PNG per record and an ``index.html`` listing them into ``--out`` (default ``<FILE>_vis/`` beside the
file). With ``--config``, geometry records first go through that config's ``custom.augmentation`` with the draw
training makes for them in epoch ``E`` (seed ``training.seed``), so the pictures show what the model is trained on;
chat records' answers are read in the config's coordinate convention (without a config, ``norm1000``).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from ..config import ConfigError, load_and_validate
from ..datasets.augmentation import augmenter_for, sample_rng
from ..datasets.builders import coords_of, first_image, image_input, load_image
from ..datasets.builders.coords import Coords
from ..datasets.contract import RecordError, is_chat_record
from ..datasets.dense_caption import DenseCaptionDataset
from .draw import FontError, LabelFont


def visualize(jsonl: str | Path, n: int, out: str | Path | None = None, config: str | Path | None = None,
              epoch: int = 0, font: 'LabelFont | None' = None) -> Path:
    """Draw the first ``n`` records of ``jsonl`` (labels in ``font``, default ``LabelFont.choose(None)``); returns
    the gallery page's path."""
    from .draw import GT_COLOR, draw_objects, hex_color, missing_glyphs_warning
    from .gallery import GalleryItem, write_gallery
    from .parse import parse_dense, record_objects

    label_font = font or LabelFont.choose(None)
    augmenter, seed, coords = None, 0, Coords()
    if config is not None:
        cfg = load_and_validate(config)
        augmenter = augmenter_for(cfg.augmentation)
        seed, coords = cfg.seed, coords_of(cfg)
    dataset = DenseCaptionDataset(jsonl, None, n)  # only read here: no template needed
    folder = Path(out) if out else dataset.path.with_name(dataset.path.stem + '_vis')
    folder.mkdir(parents=True, exist_ok=True)
    items, drawn = [], []
    for idx in tqdm(range(len(dataset)), desc='drawing', unit='rec'):
        record = dataset.record(idx)
        inputs = dataset.inputs(idx)  # checks the record; errors name its file and line
        details = {}
        if is_chat_record(record):
            source = first_image(inputs)
            if source is None:
                raise RecordError(f'{dataset.where(idx)}: no image to draw')
            image = load_image(source)
            answer = inputs['messages'][-1]['content']
            objects = parse_dense(answer, image.width, image.height, coords).objects
        else:
            image = load_image(image_input(record['images'][0], dataset.path.parent))
            if augmenter is not None:
                image, record, dropped = augmenter(image, record, sample_rng(seed, epoch, idx))
                details['dropped by augmentation'] = str(dropped)
            objects = record_objects(record)
        details['objects'] = str(len(objects))
        name = f'{idx:04d}.png'
        draw_objects(image, objects, GT_COLOR, label_font).save(folder / name)
        drawn += [obj.desc for obj in objects]
        items.append(GalleryItem(name, dataset.where(idx), None, details))
    if (warning := missing_glyphs_warning(label_font, drawn)) is not None:
        print(warning, file=sys.stderr, flush=True)
    title = f'{dataset.path.name}: {len(items)} records' + (f', augmented as in epoch {epoch}' if augmenter else '')
    return write_gallery(folder, items, title, {'ground truth': hex_color(GT_COLOR)})


def cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog='python -m src.eval.visualize', description=__doc__.split('\n')[0])
    parser.add_argument('jsonl', help='the JSONL file to draw')
    parser.add_argument('--n', type=int, default=20, help='how many records, from the top (default 20)')
    parser.add_argument('--config', help='apply this config\'s augmentation and coordinate convention')
    parser.add_argument('--epoch', type=int, default=0, help='the epoch whose augmentation draw is shown')
    parser.add_argument('--out', help='output folder (default: <FILE>_vis/ beside the file)')
    parser.add_argument('--font', help='a .ttf / .otf font for the labels (default: DejaVu Sans; name one with the '
                                       'labels\' characters, e.g. Noto Sans CJK for Chinese)')
    flags = parser.parse_args(argv)
    if flags.n <= 0:
        parser.error(f'--n must be a positive integer, got {flags.n}')
    try:
        font = LabelFont.choose(flags.font)
        page = visualize(flags.jsonl, flags.n, flags.out, flags.config, flags.epoch, font)
    except (ConfigError, RecordError, FontError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    print(f'pictures: {page}')
    return 0


if __name__ == '__main__':
    sys.exit(cli())
