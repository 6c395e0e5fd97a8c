"""Samples/s of the project's data path against ms-swift's own, on the same generated records, in one run.

    python benchmarks/data_throughput.py [--records 2000] [--workers 0 1 2] [--augment] [--dir /tmp/data_bench]

The records are dense-caption geometry records: 1024x768 JPEG images (64 distinct noisy pictures, decoded anew for
every sample) with 20 to 80 boxes, polygons and lines each. Both paths end in the same template (the tiny Qwen3-VL's
``qwen3_vl`` template in training mode, the real Qwen3-VL image processor settings: 16-pixel patches merged 2x2, so a
1024x768 image is 768 vision tokens) and a ``DataLoader`` over all records with ``--batch-size``:

- project: ``DenseCaptionDataset`` (JSONL offsets, contract check, optional augmentation, builder, encode) with the
  project's ``TelemetryCollator``;
- ms-swift: the same records pre-rendered to ms-swift's own row format (``<image>`` placeholder + ``images``),
  loaded with ``swift.dataset.load_dataset`` and encoded lazily by ``LazyLLMDataset``, as ``swift sft`` does for
  multimodal models, with the template's collator. Its loading and preprocessing before the first sample are not
  timed.

Printed: samples/s per path and worker count, and the ratio project / ms-swift (target >= 1.0 with augmentation
off). The feed rate is compared with what one GPU consumes in a Qwen3-VL-4B step (see ``gpu_demand``).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

WIDTH, HEIGHT = 1024, 768
OBJECTS = (20, 80)
DISTINCT_IMAGES = 64
PROMPT = 'List every object in the image as JSON.'
MAX_LENGTH = 8192
REAL_IMAGE_SIZE = {'longest_edge': 16777216, 'shortest_edge': 65536}
"""``size`` in Qwen3-VL-{2B,4B,8B}-Instruct's preprocessor_config.json (pixels)."""
AUGMENTATION = {'ops': [{'name': 'hflip', 'prob': 0.5}, {'name': 'rotate', 'prob': 0.5, 'max_deg': 10},
                        {'name': 'crop', 'prob': 0.5, 'min_scale': 0.7}, {'name': 'color_jitter', 'prob': 0.5}]}


def gpu_demand(tokens_per_sample: float) -> float:
    """Samples/s one H100 consumes training Qwen3-VL-4B with LoRA: an estimate from FLOPs, not a measurement.

    A LoRA step costs about 4 * N * T FLOPs (forward 2NT, backward through the activations 2NT; the frozen weights
    get no weight gradients), N = 4.4e9 parameters (LLM + ViT). At 40% MFU of the H100's 989 TFLOP/s dense bf16 peak
    the GPU finishes one sample of T tokens in 4 * N * T / (0.4 * 989e12) seconds.
    """
    return 0.4 * 989e12 / (4 * 4.4e9 * tokens_per_sample)


def make_data(root: Path, records: int, size: tuple[int, int] = (WIDTH, HEIGHT),
              objects_per_record: tuple[int, int] = OBJECTS) -> tuple[Path, Path]:
    """(project JSONL, ms-swift JSONL) of the same records, ``size`` images with ``objects_per_record`` (lowest,
    highest) objects each; written once per set of arguments."""
    from PIL import Image

    from src.datasets.builders import render_objects
    from src.datasets.builders.coords import Coords

    width, height = size
    low, high = objects_per_record
    root.mkdir(parents=True, exist_ok=True)
    name = f'{records}_{width}x{height}_{low}-{high}.jsonl'
    ours, theirs = root / f'project_{name}', root / f'swift_{name}'
    if ours.is_file() and theirs.is_file():
        return ours, theirs
    rng = np.random.default_rng(0)
    images = root / f'images_{width}x{height}'
    images.mkdir(exist_ok=True)
    for i in range(DISTINCT_IMAGES):
        path = images / f'{i:03d}.jpg'
        if not path.is_file():
            base = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
            picture = Image.fromarray(base).resize((width, height), Image.BILINEAR)
            noise = rng.integers(-12, 12, (height, width, 3))
            Image.fromarray(np.clip(np.asarray(picture) + noise, 0, 255).astype(np.uint8)).save(path, quality=90)
    with open(ours, 'w') as f_ours, open(theirs, 'w') as f_theirs:
        for i in range(records):
            objects = []
            for k in range(int(rng.integers(low, high + 1))):
                x, y = float(rng.uniform(0, width - 60)), float(rng.uniform(0, height - 60))
                w, h = float(rng.uniform(8, 60)), float(rng.uniform(8, 60))
                kind = k % 3
                if kind == 0:
                    objects.append({'desc': f'object {k % 7}', 'bbox_2d': [x, y, x + w, y + h]})
                elif kind == 1:
                    objects.append({'desc': f'part {k % 5}', 'poly': [x, y, x + w, y, x + w, y + h, x, y + h]})
                else:
                    objects.append({'desc': 'lane', 'line': [x, y, x + w / 2, y + h / 2, x + w, y + h]})
            image = str(images / f'{i % DISTINCT_IMAGES:03d}.jpg')
            f_ours.write(json.dumps({'images': [image], 'width': width, 'height': height, 'objects': objects,
                                     'dataset': 'bench'}) + '\n')
            answer = render_objects(objects, width, height, Coords())
            f_theirs.write(json.dumps({'messages': [{'role': 'user', 'content': f'<image>{PROMPT}'},
                                                    {'role': 'assistant', 'content': answer}],
                                       'images': [image]}) + '\n')
    return ours, theirs


def load_template():
    import torch
    from swift.model import get_model_processor
    from swift.template import get_template

    from src.testing.tiny_model import ensure_tiny_model

    model_dir = REPO / '.cache' / 'tiny-qwen3-vl'
    ensure_tiny_model(str(model_dir), True, 'qwen3_vl')
    model, processor = get_model_processor(str(model_dir), model_type='qwen3_vl', torch_dtype=torch.float32)
    # The tiny checkpoint caps images at 64 tokens; the real Qwen3-VL processor's limits keep 1024x768 at full size.
    processor.image_processor.size = REAL_IMAGE_SIZE
    template = get_template(processor, max_length=MAX_LENGTH, truncation_strategy='raise')
    template.set_mode('train')
    template.model = model  # the collator computes Qwen3-VL's 3D rope positions with the model
    return template


def project_dataset(path: Path, template, augment: bool):
    from src.config.augmentation import parse_augmentation
    from src.datasets import BuildSettings, DenseCaptionDataset
    from src.datasets.augmentation import augmenter_for
    from src.trainers.telemetry import TelemetryCollator

    settings = BuildSettings(prompts={'dense': PROMPT, 'summary': ''})
    augmenter = augmenter_for(parse_augmentation(AUGMENTATION)[0]) if augment else None
    return DenseCaptionDataset(path, template, settings=settings, augmenter=augmenter), \
        TelemetryCollator(template.data_collator)


def swift_dataset(path: Path, template):
    from swift.dataset import load_dataset
    from swift.dataset.utils import LazyLLMDataset

    train, _ = load_dataset([str(path)], load_from_cache_file=False)
    return LazyLLMDataset(train, template.encode, strict=True), template.data_collator


def samples_per_second(dataset, collate, workers: int, batch_size: int) -> tuple[float, int]:
    """(samples/s, mean tokens per sample) over the whole dataset; worker start-up is inside the timed span."""
    from torch.utils.data import DataLoader

    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        persistent_workers=False)
    start = time.perf_counter()
    samples = tokens = 0
    for batch in loader:
        samples += batch['input_ids'].shape[0]
        tokens += int(batch['attention_mask'].sum()) if 'attention_mask' in batch else batch['input_ids'].numel()
    return samples / (time.perf_counter() - start), tokens // max(samples, 1)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', type=int, default=2000)
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 1, 2])
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--augment', action='store_true', help='also time the project path with augmentation on')
    parser.add_argument('--dir', default='/tmp/data_bench')
    flags = parser.parse_args(argv)

    ours, theirs = make_data(Path(flags.dir), flags.records)
    template = load_template()
    results: dict = {}
    print(f'{flags.records} records of {WIDTH}x{HEIGHT} images, {OBJECTS[0]}-{OBJECTS[1]} objects each, '
          f'batch {flags.batch_size}')
    header = f'{"workers":>7}  {"ms-swift":>10}  {"project":>10}  {"ratio":>6}'
    print(header + ('  project+aug' if flags.augment else ''))
    tokens = 0
    for workers in flags.workers:
        base, tokens = samples_per_second(*swift_dataset(theirs, template), workers, flags.batch_size)
        mine, _ = samples_per_second(*project_dataset(ours, template, False), workers, flags.batch_size)
        row = {'ms-swift': base, 'project': mine, 'ratio': mine / base}
        line = f'{workers:>7}  {base:>8.1f}/s  {mine:>8.1f}/s  {mine / base:>5.2f}x'
        if flags.augment:
            row['project+aug'], _ = samples_per_second(*project_dataset(ours, template, True), workers,
                                                       flags.batch_size)
            line += f'  {row["project+aug"]:>9.1f}/s'
        results[workers] = row
        print(line, flush=True)
    demand = gpu_demand(tokens)
    print(f'mean tokens per sample: {tokens}; a Qwen3-VL-4B LoRA step on one H100 consumes about {demand:.1f} '
          'samples/s (FLOPs estimate at 40% MFU, see gpu_demand)')
    best = max(results.values(), key=lambda r: r['project'])['project']
    print(f'project feed rate / GPU demand: {best / demand:.2f}x with {max(flags.workers)} worker(s) at most')
    return results


if __name__ == '__main__':
    main()
