"""Samples/s of the project's data path against ms-swift's own, on the same generated records, in one run.

    python benchmarks/data_throughput.py [--records 1000] [--workers 0 2] [--batch-size 4] [--dir /tmp/data_bench]

The records are dense-caption geometry records: 1024x768 JPEG images (64 distinct noisy pictures, decoded anew for
every sample) with 20 to 80 boxes, polygons and lines each. Both paths end in the same template (the tiny Qwen3-VL's
``qwen3_vl`` template in training mode, the real Qwen3-VL image processor settings: 16-pixel patches merged 2x2, so a
1024x768 image is 768 vision tokens) and a ``DataLoader`` over all records with ``--batch-size``:

- ms-swift: the same records pre-rendered to ms-swift's own row format (``<image>`` placeholder + ``images``),
  loaded with ``swift.dataset.load_dataset`` and encoded lazily by ``LazyLLMDataset``, as ``swift sft`` does for
  multimodal models, with the template's collator, in a process as ``swift sft`` leaves it. Its loading and
  preprocessing before the first sample are not timed.
- project: ``DenseCaptionDataset`` (JSONL offsets, contract check, builder, encode) with the project's
  ``TelemetryCollator``, in a process set up as ``python -m src.sft`` sets it up (``tune_allocator``) and with
  uint8 patches (``read_uint8_patches``); the loop expands every batch's patches to float32 rows on the CPU, the
  work the vision tower's hook does on the GPU in training. Also timed: the project path as it was before each
  change (float32 rows, glibc's default allocator), and with augmentation on.

Every measurement runs in its own process (a fresh allocator, as a training run has). Printed: samples/s per path
and worker count, and the ratio project / ms-swift (target >= 1.3x, with and without augmentation). The feed rate is
compared with what one GPU consumes in a Qwen3-VL-4B step (see ``gpu_demand``).
"""
from __future__ import annotations

import argparse
import json
import subprocess
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


MODEL_DIR = REPO / '.cache' / 'tiny-qwen3-vl'


def ensure_model() -> None:
    """Build the tiny checkpoint once, before the measuring processes load it."""
    from src.testing.tiny_model import ensure_tiny_model

    ensure_tiny_model(str(MODEL_DIR), True, 'qwen3_vl')


def load_template():
    import torch
    from swift.model import get_model_processor
    from swift.template import get_template

    ensure_model()
    model, processor = get_model_processor(str(MODEL_DIR), model_type='qwen3_vl', torch_dtype=torch.float32)
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


VARIANTS = {
    # name: (path, allocator kept, uint8 patches, augmentation)
    'ms-swift': ('swift', False, False, False),
    'before': ('project', False, False, False),
    '+allocator': ('project', True, False, False),
    'project': ('project', True, True, False),
    'project+aug': ('project', True, True, True),
}
"""``before`` is the project's path before the two changes; ``+allocator`` adds the first; ``project`` is the path
``python -m src.sft`` takes now."""


def measure(variant: str, records: Path, workers: int, batch_size: int) -> dict:
    """{samples_per_s, tokens} of one variant, in this process; worker start-up is inside the timed span."""
    import torch
    from torch.utils.data import DataLoader

    from src.datasets.pixels import patch_layout, read_uint8_patches
    from src.run.allocator import tune_allocator

    path, allocator, uint8, augment = VARIANTS[variant]
    if allocator:
        tune_allocator()
    template = load_template()
    layout = patch_layout(template.processor.image_processor)
    if uint8 and not read_uint8_patches(template, template.model):
        raise SystemExit('the tiny model did not take uint8 patches')
    if path == 'swift':
        dataset, collate = swift_dataset(records, template)
    else:
        dataset, collate = project_dataset(records, template, augment)
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=collate,
                        persistent_workers=False)
    start = time.perf_counter()
    samples = tokens = 0
    for batch in loader:
        if batch['pixel_values'].dtype == torch.uint8:  # what the vision tower's hook does, here on the CPU
            batch['pixel_values'] = layout.expand(batch['pixel_values'], torch.float32)
        samples += batch['input_ids'].shape[0]
        tokens += int(batch['attention_mask'].sum()) if 'attention_mask' in batch else batch['input_ids'].numel()
    return {'samples_per_s': samples / (time.perf_counter() - start), 'tokens': tokens // max(samples, 1)}


def measure_in_subprocess(variant: str, records: Path, workers: int, batch_size: int) -> dict:
    done = subprocess.run([sys.executable, __file__, '--measure', variant, '--records-file', str(records),
                           '--workers', str(workers), '--batch-size', str(batch_size)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f'{variant} with {workers} worker(s) failed:\n{done.stderr[-3000:]}')
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', type=int, default=1000)
    parser.add_argument('--workers', type=int, nargs='+', default=[0, 2])
    parser.add_argument('--batch-size', type=int, default=4)
    parser.add_argument('--dir', default='/tmp/data_bench')
    parser.add_argument('--measure', choices=list(VARIANTS), help=argparse.SUPPRESS)  # one measurement, as JSON
    parser.add_argument('--records-file', type=Path, help=argparse.SUPPRESS)
    flags = parser.parse_args(argv)
    if flags.measure:
        print(json.dumps(measure(flags.measure, flags.records_file, flags.workers[0], flags.batch_size)))
        return {}

    ours, theirs = make_data(Path(flags.dir), flags.records)
    ensure_model()
    print(f'{flags.records} records of {WIDTH}x{HEIGHT} images, {OBJECTS[0]}-{OBJECTS[1]} objects each, '
          f'batch {flags.batch_size}; samples/s, each in its own process')
    print(f'{"workers":>7}' + ''.join(f'  {name:>12}' for name in VARIANTS) + '  project/ms-swift  +aug/ms-swift')
    results: dict = {}
    tokens = 0
    for workers in flags.workers:
        row = {}
        for variant, (path, *_) in VARIANTS.items():
            measured = measure_in_subprocess(variant, theirs if path == 'swift' else ours, workers, flags.batch_size)
            row[variant] = measured['samples_per_s']
            tokens = measured['tokens']
        row['ratio'] = row['project'] / row['ms-swift']
        row['ratio+aug'] = row['project+aug'] / row['ms-swift']
        results[workers] = row
        print(f'{workers:>7}' + ''.join(f'  {row[name]:>10.1f}/s' for name in VARIANTS)
              + f'  {row["ratio"]:>15.2f}x  {row["ratio+aug"]:>12.2f}x', flush=True)
    demand = gpu_demand(tokens)
    print(f'mean tokens per sample: {tokens}; a Qwen3-VL-4B LoRA step on one H100 consumes about {demand:.1f} '
          'samples/s (FLOPs estimate at 40% MFU, see gpu_demand)')
    best = max(row['project'] for row in results.values())
    print(f'project feed rate / GPU demand: {best / demand:.2f}x with {max(flags.workers)} worker(s) at most')
    return results


if __name__ == '__main__':
    main()
