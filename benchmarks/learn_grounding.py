"""Does the pipeline learn? A synthetic grounding task that a small random Qwen3-VL learns on a CPU, with a control.

    python benchmarks/learn_grounding.py                      # generate, train 3 seeds, evaluate before and after
    python benchmarks/learn_grounding.py --control            # also the same run with a geometry bug injected
    python benchmarks/learn_grounding.py --inject-bug flip-boxes

The data: 96x96 images, each with one shape of three classes ("car": a red square, "cat": a blue circle, "dog": a
green triangle, names the tiny tokenizer holds as single tokens) at a continuous random position and a size of 22-50%
of the side, so that every box is different and memorising answers cannot pass. Records are ordinary geometry
records (`docs/data/DATA_JSONL_CONTRACT.md`) in pixels; answers are the dense JSON in 0-1000 coordinates.

The run: a small random Qwen3-VL (``src/testing/tiny_model.py`` with a 4-layer, 64-wide text model and a 4-block,
96-wide vision tower) trained from scratch through the public entrypoint (``python -m src.sft --config
<dir>/grounding_seed<S>.yaml``: full fine-tuning, batch 8, 1200 steps, AdamW at 1e-3 with cosine decay, augmentation
on: hflip, scale and a small rotate, so boxes must move with the pixels), then evaluated with ``python -m src.eval``
on 200 held-out images. Printed: F1@0.5 and the mean IoU of matched boxes before training (the random model) and
after, the training loss curve and the wall time. Measured figures: docs/evaluation.md ("Does it learn?").

One training run is one draw: the model's initialisation, the data order and the augmentation follow its seed, and
the floating-point rounding of the machine changes every step a little, which 1,200 steps of a model trained from
scratch amplify into a different end point. The thread count changes that rounding, so every training and
evaluation process computes on one thread, and the runs go side by side (``--jobs``, one per core by default): the
figures then depend on the CPU's instructions, not on its number of cores. The benchmark trains ``--runs`` (3)
models, seeds ``--seed`` .. ``--seed + runs - 1``, on the same data, and reports the median and the spread (lowest
to highest) of each figure; the median is the figure to compare.

The control: ``--inject-bug flip-boxes`` warps the pixels but leaves every box where it was (a geometry bug in the
augmentation: a flipped image keeps its unflipped box); trained the same way, it must score clearly lower.
``--control`` runs both and prints both (twice the time).

Variants of the same task:

- ``--rlhf gkd``: forward-only GKD (``rlhf.lmbda`` 0, no sampling) with the step-0 model as the frozen teacher: the
  cross-entropy on the answers plus a JSD term that anchors the student to the random model it started from; it
  must still learn (F1 printed).
- ``--mode summary``: images with one to three shapes (one per quadrant), trained to answer the project's summary
  (``dataset: shapes`` / ``objects: N`` / the JSON count per class); scored with ``src.eval``'s summary metrics
  (content F1 of the counts, object total, format), before and after.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import random
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

# Three classes, each a colour and a shape, named by words the tiny tokenizer holds as single tokens.
CLASSES = {'car': ((220, 40, 40), 'square'), 'cat': ((40, 70, 220), 'circle'), 'dog': ((40, 170, 60), 'triangle')}
PROMPT = 'Locate the object. Answer as JSON: [{"desc", "bbox_2d"}].'
SUMMARY_PROMPT = 'Count the objects of each class.'
SUMMARY_DATASET = 'shapes'
# Every training and evaluation process computes on one thread: the thread count changes the rounding of the matrix
# products, so the figures of a run then depend on the CPU, not on how many cores the machine has; the runs of
# several seeds go side by side instead (--jobs).


def one_thread() -> dict[str, str]:
    """The environment of a training or evaluation process: this one's, computing on one thread."""
    return {**os.environ, 'OMP_NUM_THREADS': '1', 'MKL_NUM_THREADS': '1'}
TEXT = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
            head_dim=16, rope_parameters={'rope_type': 'default', 'rope_theta': 10000.0, 'mrope_section': [2, 3, 3]})
VISION = dict(depth=4, hidden_size=96, intermediate_size=256, num_heads=4, deepstack_visual_indexes=[1, 3])


def _paint(pen: ImageDraw.ImageDraw, name: str, box: tuple[float, float, float, float]) -> None:
    colour, shape = CLASSES[name]
    x1, y1, x2, y2 = box
    if shape == 'square':
        pen.rectangle([x1, y1, x2, y2], fill=colour)
    elif shape == 'circle':
        pen.ellipse([x1, y1, x2, y2], fill=colour)
    else:
        pen.polygon([(x1, y2), (x2, y2), ((x1 + x2) / 2, y1)], fill=colour)


SHAPE_SIZE = (0.22, 0.5)
"""Side of a shape as a fraction of the image side (lowest, highest): ``--shape-size``."""


def draw(rng: random.Random, size: int, image_path: Path, shape_size: tuple[float, float] = SHAPE_SIZE) -> dict:
    """One image with one shape; the geometry record describing it."""
    name = rng.choice(list(CLASSES))
    side = rng.uniform(*shape_size) * size
    x1, y1 = rng.uniform(0, size - side), rng.uniform(0, size - side)
    image = Image.new('RGB', (size, size), (235, 235, 235))
    _paint(ImageDraw.Draw(image), name, (x1, y1, x1 + side, y1 + side))
    image.save(image_path)
    box = [round(v, 1) for v in (x1, y1, x1 + side, y1 + side)]
    return {'images': [f'images/{image_path.name}'], 'width': size, 'height': size,
            'objects': [{'desc': name, 'bbox_2d': box}]}


def draw_summary(rng: random.Random, size: int, image_path: Path) -> dict:
    """One to three shapes, each in its own quadrant; the record with its summary (counts per class)."""
    image = Image.new('RGB', (size, size), (235, 235, 235))
    pen = ImageDraw.Draw(image)
    half = size / 2
    objects = []
    for quadrant in rng.sample(range(4), rng.randint(1, 3)):
        name = rng.choice(list(CLASSES))
        side = rng.uniform(0.5, 0.9) * half
        x1 = (quadrant % 2) * half + rng.uniform(0, half - side)
        y1 = (quadrant // 2) * half + rng.uniform(0, half - side)
        _paint(pen, name, (x1, y1, x1 + side, y1 + side))
        objects.append({'desc': name, 'bbox_2d': [round(v, 1) for v in (x1, y1, x1 + side, y1 + side)]})
    image.save(image_path)
    counts = {name: n for name in sorted(CLASSES) if (n := sum(o['desc'] == name for o in objects))}
    summary = f'dataset: {SUMMARY_DATASET}\nobjects: {len(objects)}\n{json.dumps(counts)}'
    return {'images': [f'images/{image_path.name}'], 'width': size, 'height': size, 'objects': objects,
            'dataset': SUMMARY_DATASET, 'summary': summary}


def generate(root: Path, train: int, val: int, size: int, seed: int = 0, mode: str = 'dense',
             shape_size: tuple[float, float] = SHAPE_SIZE) -> tuple[Path, Path]:
    (root / 'images').mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    record = draw_summary if mode == 'summary' else functools.partial(draw, shape_size=shape_size)
    paths = []
    for split, count in (('train', train), ('val', val)):
        path = root / f'{split}.jsonl'
        with open(path, 'w') as f:
            for i in range(count):
                f.write(json.dumps(record(rng, size, root / 'images' / f'{split}_{i:05d}.png')) + '\n')
        paths.append(path)
    return paths[0], paths[1]


def write_config(root: Path, model: Path, train: Path, val: Path, flags, name: str, seed: int) -> Path:
    config = {
        'global_max_length': 256,
        'model': {'model': str(model), 'model_type': 'qwen3_vl', 'torch_dtype': 'float32'},
        'template': {'truncation_strategy': 'raise'},
        'tuner': {'train_type': 'full', 'freeze_llm': False, 'freeze_vit': False, 'freeze_aligner': False},
        'training': {
            'output_dir': str(root / name), 'max_steps': flags.steps, 'per_device_train_batch_size': flags.batch,
            'gradient_accumulation_steps': 1,
            'learning_rate': flags.lr, 'lr_scheduler_type': 'cosine', 'warmup_ratio': 0.05, 'weight_decay': 0.0,
            'logging_steps': max(1, min(10, flags.steps // 10)), 'save_strategy': 'steps', 'save_steps': flags.steps,
            'save_only_model': True,
            'eval_strategy': 'no', 'report_to': [], 'dataloader_num_workers': 0, 'seed': seed,
            'gradient_checkpointing': False, 'add_version': False, 'overwrite_output_dir': True,
        },
        'custom': {
            'train_jsonl': str(train), 'val_jsonl': str(val), 'mode': flags.mode, 'coord_format': 'norm1000',
            'prompts': {'dense': PROMPT, 'summary': SUMMARY_PROMPT}, 'encode_check': False,
            'augmentation': {'ops': [{'name': 'hflip', 'prob': 0.5},
                                     {'name': 'scale', 'prob': 0.3, 'min_scale': 0.9, 'max_scale': 1.1},
                                     {'name': 'rotate', 'prob': 0.2, 'max_deg': 5.0}]},
        },
    }
    if flags.rlhf == 'gkd':  # forward-only GKD, anchored to the model as it was at step 0
        config['rlhf'] = {'rlhf_type': 'gkd', 'teacher_model': str(model), 'beta': 0.5, 'sft_alpha': 1.0,
                          'lmbda': 0.0, 'seq_kd': False, 'llm_kd_weight': 1.0, 'gkd_logits_topk': 64}
    path = root / f'{name}.yaml'
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def evaluate(config: Path, checkpoint: Path, out: Path, records: Path, limit: int) -> dict:
    """F1@0.5 (``src.eval``'s report) and the mean IoU of the matched boxes, on the held-out records; in summary mode
    the report's summary metrics."""
    import numpy as np

    from src.datasets.builders.coords import Coords
    from src.eval.geometry import box_iou
    from src.eval.metrics import match
    from src.eval.parse import parse_dense

    command = [sys.executable, '-m', 'src.eval', '--config', str(config), '--checkpoint', str(checkpoint), '--output',
               str(out), '--limit', str(limit), '--max-new-tokens', '48', '--batch-size', '16']
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=one_thread())
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    report = json.loads((out / 'eval_report.json').read_text())
    overall = report['overall']
    if report['mode'] == 'summary':
        return {k: overall[k] for k in ('summary_content_f1', 'summary_objects_total', 'summary_format',
                                        'parse_failure_rate')}
    truth = [json.loads(line) for line in records.read_text().splitlines()][:limit]
    predictions = [json.loads(line) for line in (out / 'predictions.jsonl').read_text().splitlines()]
    ious = []
    for record, prediction in zip(truth, predictions):
        answer = parse_dense(prediction['prediction'], record['width'], record['height'], Coords('norm1000'))
        boxes = [o.coords for o in answer.objects if o.kind == 'bbox_2d']
        gts = [o['bbox_2d'] for o in record['objects']]
        if boxes:
            similarity = np.array([[box_iou(b, g) for g in gts] for b in boxes])
            ious += [similarity[i, j] for i, j in match(similarity, 0.5)]
    return {'f1@0.5': overall['f1@0.5'], 'mean_iou': float(np.mean(ious)) if ious else 0.0,
            'parse_failure_rate': overall['parse_failure_rate']}


def _train_with_bug(config: str, bug: str) -> None:
    """The training entrypoint with a geometry bug injected: augmentation warps the pixels but leaves every object
    where it was (``flip-boxes``: a flipped image keeps its unflipped boxes)."""
    import numpy as np

    from src.datasets.augmentation import pipeline
    from src.sft import cli

    assert bug == 'flip-boxes'
    moved = pipeline.transform_object
    pipeline.transform_object = lambda obj, matrix, w, h, rotate_to: moved(obj, np.eye(3), w, h, rotate_to)
    sys.exit(cli(['--config', config]))


def train(config: Path, bug: str | None) -> tuple[list[dict], float]:
    """Train through ``python -m src.sft`` (or, with a bug, the same entrypoint behind ``_train_with_bug``)."""
    start = time.monotonic()
    command = ([sys.executable, '-m', 'src.sft', '--config', str(config)] if bug is None else
               [sys.executable, __file__, '--train-with-bug', bug, '--config', str(config)])
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=one_thread())
    if done.returncode:
        raise SystemExit(done.stderr[-3000:])
    out = Path(yaml.safe_load(config.read_text())['training']['output_dir'])
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    return [r for r in rows if 'train/loss' in r], time.monotonic() - start


def headline(scores: dict) -> str:
    """The figures printed for one evaluation."""
    if 'summary_content_f1' in scores:
        return (f'summary content F1 {scores["summary_content_f1"]:.3f}, objects total '
                f'{scores["summary_objects_total"]:.3f}, format {scores["summary_format"]:.3f}, parse failures '
                f'{scores["parse_failure_rate"]:.2f}')
    return (f'F1@0.5 {scores["f1@0.5"]:.3f}, mean IoU {scores["mean_iou"]:.3f}, parse failures '
            f'{scores["parse_failure_rate"]:.2f}')


def run(flags, root: Path, model: Path, train_path: Path, val_path: Path, bug: str | None, seed: int) -> dict:
    name = '_'.join(['grounding' if flags.mode == 'dense' else 'summary'] + ([flags.rlhf] if flags.rlhf else [])
                    + ([bug] if bug else []) + [f'seed{seed}'])
    config = write_config(root, model, train_path, val_path, flags, name, seed)
    curve, seconds = train(config, bug)
    checkpoint = root / name / f'checkpoint-{flags.steps}'
    after = evaluate(config, checkpoint, root / name / 'eval', val_path, flags.val)
    return {'seed': seed, 'curve': [(r['train/global_step/max_steps'], r['train/loss']) for r in curve],
            'seconds': seconds, 'after': after, 'config': str(config)}


def summarise(runs: list[dict]) -> dict:
    """The median and the spread (lowest, highest) of every figure over the runs, the runs themselves kept."""
    figures = {key: sorted(r['after'][key] for r in runs) for key in runs[0]['after']}
    losses = sorted(r['curve'][-1][1] for r in runs)
    return {'runs': runs, 'after': {k: statistics.median(v) for k, v in figures.items()},
            'spread': {k: (v[0], v[-1]) for k, v in figures.items()}, 'final_loss': statistics.median(losses),
            'seconds': statistics.median(r['seconds'] for r in runs),
            'curve': runs[[r['after'] for r in runs].index(_median_run(runs))]['curve']}


def _median_run(runs: list[dict]) -> dict:
    """The `after` figures of the run whose headline figure is the median (its curve is the one printed)."""
    key = 'f1@0.5' if 'f1@0.5' in runs[0]['after'] else 'summary_content_f1'
    ordered = sorted((r['after'] for r in runs), key=lambda a: a[key])
    return ordered[(len(ordered) - 1) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--dir', type=Path, default=Path('/tmp/learn_grounding'))
    parser.add_argument('--train', type=int, default=4000, help='training images')
    parser.add_argument('--val', type=int, default=200, help='held-out images')
    parser.add_argument('--size', type=int, default=96, help='image side in pixels (96: 3x3 image tokens)')
    parser.add_argument('--steps', type=int, default=1200)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--lr', type=float, default=1e-3)
    parser.add_argument('--seed', type=int, default=0, help='the data\'s seed, and the first run\'s')
    parser.add_argument('--runs', type=int, default=3, help='models trained, one per seed; medians are reported')
    parser.add_argument('--jobs', type=int, help='runs side by side, one thread each (default: one per CPU core)')
    parser.add_argument('--inject-bug', choices=['flip-boxes'])
    parser.add_argument('--control', action='store_true', help='run with and without --inject-bug flip-boxes')
    parser.add_argument('--mode', choices=['dense', 'summary'], default='dense',
                        help='summary: count the shapes per class instead of locating one')
    parser.add_argument('--rlhf', choices=['gkd'], help='gkd: forward-only GKD against the step-0 model')
    parser.add_argument('--shape-size', type=float, nargs=2, default=SHAPE_SIZE, metavar=('LOW', 'HIGH'),
                        help='dense mode: side of the shape as a fraction of the image side (default 0.22 0.5)')
    parser.add_argument('--train-with-bug', help=argparse.SUPPRESS)
    parser.add_argument('--config', help=argparse.SUPPRESS)
    flags = parser.parse_args(argv)
    if flags.mode == 'summary' and (flags.control or flags.inject_bug):
        parser.error('the flip-boxes control needs boxes in the answer: use it with --mode dense')
    if flags.runs < 1:
        parser.error(f'--runs must be at least 1, got {flags.runs}')
    if flags.jobs is not None and flags.jobs < 1:
        parser.error(f'--jobs must be at least 1, got {flags.jobs}')
    if flags.train_with_bug:
        _train_with_bug(flags.config, flags.train_with_bug)
    from src.testing.tiny_model import build_tiny_model

    start = time.monotonic()
    root = flags.dir
    train_path, val_path = generate(root / f'data_{flags.mode}', flags.train, flags.val, flags.size, flags.seed,
                                    flags.mode, tuple(flags.shape_size))
    seeds = list(range(flags.seed, flags.seed + flags.runs))
    models = {seed: build_tiny_model(root / f'model_seed{seed}', seed=seed, text=TEXT, vision=VISION) for seed in seeds}
    config = write_config(root, models[seeds[0]], train_path, val_path, flags, 'untrained', seeds[0])
    before = evaluate(config, models[seeds[0]], root / 'untrained_eval', val_path, flags.val)  # a random model
    print(f'before training: {headline(before)}', flush=True)
    bugs = [None, 'flip-boxes'] if flags.control else [flags.inject_bug]

    def one(bug: str | None, seed: int) -> dict:
        result = run(flags, root, models[seed], train_path, val_path, bug, seed)
        print(f'{bug or "clean"}, seed {seed}: {headline(result["after"])}; loss {result["curve"][0][1]:.3f} '
              f'-> {result["curve"][-1][1]:.3f} ({result["seconds"]:.0f} s)', flush=True)
        return result

    with ThreadPoolExecutor(flags.jobs or min(len(bugs) * len(seeds), os.cpu_count() or 1)) as pool:
        futures = {(bug, seed): pool.submit(one, bug, seed) for bug in bugs for seed in seeds}
        done = {key: future.result() for key, future in futures.items()}
    results = {}
    for bug in bugs:
        runs = [done[bug, seed] for seed in seeds]
        result = results[bug or 'clean'] = summarise(runs)
        spread = ', '.join(f'{k} {lo:.3f}-{hi:.3f}' for k, (lo, hi) in result['spread'].items())
        print(f'{bug or "clean"}: after {flags.steps} steps, median of {len(runs)} runs: {headline(result["after"])}; '
              f'final loss {result["final_loss"]:.3f}; spread: {spread}', flush=True)
        print('  curve (median run): ' + ', '.join(f'{step.split("/")[0]}:{loss:.2f}' for step, loss in
                                                   result['curve']))
    if flags.control:
        clean, bugged = results['clean']['after']['f1@0.5'], results['flip-boxes']['after']['f1@0.5']
        print(f'control: clean F1 {clean:.3f} vs flip-boxes F1 {bugged:.3f} (ratio {bugged / max(clean, 1e-9):.2f}, '
              'medians)')
    print(f'wall time {time.monotonic() - start:.0f} s')
    (root / 'results.json').write_text(json.dumps({'before': before, **results}, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
