"""Wall time per optimizer step of the project's SFT against plain ms-swift SFT, same model, data and seed, one run.

    python benchmarks/step_overhead.py [--steps 30] [--rounds 2] [--dir /tmp/step_overhead]

Both train the tiny Qwen3-VL LoRA recipe (configs/smoke/lora.yaml: LoRA on LLM + aligner, float32 on the CPU,
per-device batch 2) on the same generated records (192x256 images, 8 boxes each, in ms-swift's own row form,
which the project reads too):

- project: ``python -m src.sft`` on that config: ``DenseCaptionDataset``, the telemetry collator and trainer mixin
  (per-dataset loss and token accuracy), the project's callbacks;
- ms-swift: ``SwiftSft`` with the very same ``SftArguments`` the config maps to, except that ms-swift loads the file
  itself (``dataset: [file]``, ``LazyLLMDataset``) and trains with its own ``Seq2SeqTrainer``, no project callbacks.

A callback records the time at the end of every optimizer step; the figure is the median interval between step ends
(data loading, forward, backward, optimizer, logging included; the first 3 steps, warm-up, excluded). Runs
alternate (ms-swift, project, ms-swift, project, ...) after one warm-up run, so drift on the machine hits both.
Printed: both medians and the ratio project / ms-swift (target <= 1.05).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

STEP_TIMER = 'benchmark_step_timer'
WARMUP_STEPS = 3
RECORDS = 64


def register_timer() -> list[float]:
    """Register a callback (by name, as ms-swift wants) that appends ``perf_counter()`` at each step end."""
    from swift.callbacks import callbacks_map
    from swift.callbacks.base import TrainerCallback

    stamps: list[float] = []

    class StepTimer(TrainerCallback):

        def on_step_end(self, args, state, control, **kwargs):
            stamps.append(time.perf_counter())

    callbacks_map[STEP_TIMER] = StepTimer
    return stamps


def make_data(root: Path) -> Path:
    from PIL import Image

    from src.datasets.builders import render_objects
    from src.datasets.builders.coords import Coords

    images = root / 'images'
    images.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    path = root / 'train.jsonl'
    with open(path, 'w') as f:
        for i in range(RECORDS):
            image = images / f'{i:03d}.png'
            Image.fromarray(rng.integers(0, 255, (192, 256, 3), dtype=np.uint8)).save(image)
            objects = [{'desc': f'object {k % 4}', 'bbox_2d': [k * 10, k * 7, k * 10 + 30, k * 7 + 20]}
                       for k in range(8)]
            f.write(json.dumps({'messages': [
                {'role': 'user', 'content': '<image>List every object in the image as JSON.'},
                {'role': 'assistant', 'content': render_objects(objects, 256, 192, Coords())}],
                'images': [str(image)]}) + '\n')
    return path


def write_config(root: Path, name: str, data: Path, steps: int) -> Path:
    config = root / f'{name}.yaml'
    config.write_text(yaml.safe_dump({
        'extends': str(REPO / 'configs' / 'smoke' / 'lora.yaml'),
        'training': {'output_dir': str(root / name), 'overwrite_output_dir': True, 'max_steps': steps,
                     'save_strategy': 'no', 'eval_strategy': 'no', 'logging_steps': 5, 'report_to': [],
                     'callbacks': [STEP_TIMER]},
        'custom': {'train_jsonl': str(data), 'val_jsonl': None, 'encode_check': False},
    }))
    return config


def project_run(config: Path) -> None:
    from src.sft import main

    main(config)


def swift_run(config: Path, data: Path) -> None:
    """ms-swift's own SFT pipeline with the arguments the project config maps to, reading ``data`` itself."""
    from swift.arguments import SftArguments
    from swift.pipelines.train.sft import SwiftSft

    from src.config import load_and_validate
    from src.trainers.swift_args import sft_argument_kwargs

    kwargs = sft_argument_kwargs(load_and_validate(config))
    kwargs['dataset'] = [str(data)]
    kwargs['callbacks'] = [STEP_TIMER]  # without the project's callbacks
    SwiftSft(SftArguments(**kwargs)).main()


def step_times(stamps: list[float]) -> list[float]:
    """Durations of the steps after the first ``WARMUP_STEPS`` (each from the previous step's end to its own)."""
    return list(np.diff(stamps[WARMUP_STEPS - 1:]))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=30, help='optimizer steps per run')
    parser.add_argument('--rounds', type=int, default=2, help='(ms-swift, project) pairs of runs')
    parser.add_argument('--dir', default='/tmp/step_overhead')
    flags = parser.parse_args(argv)
    root = Path(flags.dir)
    root.mkdir(parents=True, exist_ok=True)
    data = make_data(root)
    stamps = register_timer()
    project_run(write_config(root, 'warmup', data, 2))  # builds the tiny model, imports: outside the figures
    times: dict[str, list[float]] = {'ms-swift': [], 'project': []}
    for r in range(flags.rounds):
        for name in ('ms-swift', 'project'):
            config = write_config(root, f'{name}_{r}', data, flags.steps + WARMUP_STEPS)
            stamps.clear()
            swift_run(config, data) if name == 'ms-swift' else project_run(config)
            times[name] += step_times(stamps)
    swift_median, project_median = (statistics.median(times[k]) for k in ('ms-swift', 'project'))
    print(f'{flags.rounds} x {flags.steps} steps each, tiny Qwen3-VL LoRA, batch 2, float32 CPU')
    print(f'ms-swift SFT  {swift_median * 1000:8.1f} ms/step (median)')
    print(f'project SFT   {project_median * 1000:8.1f} ms/step (median)')
    print(f'ratio project / ms-swift  {project_median / swift_median:.3f}x  (target <= 1.05x)')
    return {'ms-swift': swift_median, 'project': project_median}


if __name__ == '__main__':
    main()
