"""Time from command to step 1, and the record check's records/s, against the check as it was, in one run.

    python benchmarks/startup.py [--records 10000 100000] [--baseline-sample 400] [--no-sft] [--dir /tmp/startup_bench]

The records are ``benchmarks/data_throughput.py``'s: 1024x768 JPEG images (64 distinct pictures) with 20 to 80
boxes, polygons and lines each, checked with the tiny Qwen3-VL's ``qwen3_vl`` template set to the real Qwen3-VL
image processor's limits (a 1024x768 image is 768 vision tokens), ``max_length`` 8192.

Measured, per record count:

- the check as it was before ``src/datasets/record_check.py``: the pass before the model loads (each record read,
  its image header opened), then each record encoded in full by the template (decode, resize, patchify, tokenize),
  one process. It is timed on the first ``--baseline-sample`` records and its rate applied to the whole file (a
  100k-record file would take most of an hour on 2 cores);
- the check now, cold (no cached verdict; the machine's cores as workers), and again with the verdict cached;
- with ``--sft`` (default on): ``python -m src.sft`` on those records to the end of step 1 (``max_steps: 1``, the
  tiny model) with ``custom.encode_check: false``, with the check cold, and with it cached, each its own process.

Printed: records/s of each check, the ratio new / old per record, the cached rerun in seconds, the cost per million
records, and the command-to-step-1 seconds.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from benchmarks.data_throughput import MAX_LENGTH, PROMPT, REAL_IMAGE_SIZE, make_data  # noqa: E402

MODEL_DIR = REPO / '.cache' / 'tiny-qwen3-vl'


def load_template():
    from swift.model import get_processor
    from swift.template import get_template

    from src.testing.tiny_model import ensure_tiny_model

    ensure_tiny_model(str(MODEL_DIR), True, 'qwen3_vl')
    processor = get_processor(str(MODEL_DIR), model_type='qwen3_vl')
    processor.image_processor.size = REAL_IMAGE_SIZE  # the tiny checkpoint caps images at 64 tokens
    template = get_template(processor, max_length=MAX_LENGTH, truncation_strategy='raise')
    template.set_mode('train')
    return template


def baseline_rate(path: Path, template, sample: int) -> float:
    """Records/s of the check as it was: read each record (header) before the model loads, then encode each."""
    from src.datasets import BuildSettings, DenseCaptionDataset

    settings = BuildSettings(prompts={'dense': PROMPT, 'summary': ''})
    before = DenseCaptionDataset(path, None, sample, settings)
    after = DenseCaptionDataset(path, template, sample, settings)
    start = time.perf_counter()
    for idx in range(len(before)):
        before.inputs(idx)
    for idx in range(len(after)):
        after[idx]
    return len(after) / (time.perf_counter() - start)


def check_time(path: Path, template, cache: Path) -> tuple[float, float]:
    """(seconds cold, seconds with the verdict cached) of the check now, in this process."""
    from src.datasets import BuildSettings, DenseCaptionDataset
    from src.datasets.check_cache import CACHE_ENV
    from src.datasets.record_check import check_file

    shutil.rmtree(cache, ignore_errors=True)
    os.environ[CACHE_ENV] = str(cache)
    settings = BuildSettings(prompts={'dense': PROMPT, 'summary': ''})
    times = []
    for expect_cached in (False, True):
        start = time.perf_counter()
        report = check_file(DenseCaptionDataset(path, template, settings=settings))
        times.append(time.perf_counter() - start)
        assert report.cached == expect_cached and not report.problems, report.lines()[:3]
    return times[0], times[1]


def sft_to_step_1(path: Path, root: Path, encode_check: bool, cache: Path, fresh: bool) -> float:
    """Seconds of ``python -m src.sft`` to the end of step 1 on ``path``."""
    import yaml

    from src.datasets.check_cache import CACHE_ENV

    if fresh:
        shutil.rmtree(cache, ignore_errors=True)
    config = root / f'startup_{path.stem}.yaml'
    config.write_text(yaml.safe_dump({
        'extends': str(REPO / 'configs' / 'smoke' / 'lora.yaml'),
        'global_max_length': MAX_LENGTH,
        'model': {'model': str(MODEL_DIR)},
        'training': {'output_dir': str(root / 'out'), 'max_steps': 1, 'save_strategy': 'no', 'eval_strategy': 'no',
                     'per_device_train_batch_size': 1, 'report_to': [], 'overwrite_output_dir': True},
        'custom': {'train_jsonl': str(path), 'val_jsonl': None, 'encode_check': encode_check,
                   'prompts': {'dense': PROMPT}},
    }))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, '-m', 'src.sft', '--config', str(config)], cwd=REPO,
                          env={**os.environ, CACHE_ENV: str(cache)}, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f'src.sft failed:\n{done.stderr[-3000:]}')
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', type=int, nargs='+', default=[10000, 100000])
    parser.add_argument('--baseline-sample', type=int, default=400)
    parser.add_argument('--sft', action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument('--dir', type=Path, default=Path('/tmp/startup_bench'))
    flags = parser.parse_args(argv)
    flags.dir.mkdir(parents=True, exist_ok=True)
    template = load_template()
    from src.datasets.record_check import default_workers

    print(f'1024x768 records, 20-80 objects each; {default_workers()} worker(s) on {os.cpu_count()} CPUs', flush=True)
    results = {}
    for count in flags.records:
        path, _ = make_data(flags.dir, count)
        old = baseline_rate(path, template, min(flags.baseline_sample, count))
        cold, warm = check_time(path, template, flags.dir / 'cache')
        new = count / cold
        row = {'records': count, 'old_rec_s': old, 'new_rec_s': new, 'ratio': new / old, 'cached_s': warm,
               'old_s': count / old, 'new_s': cold, 'old_h_per_million': 1e6 / old / 3600,
               'new_min_per_million': 1e6 / new / 60}
        print(f'{count} records: check before {old:.1f} rec/s ({count / old:.0f} s, measured on '
              f'{min(flags.baseline_sample, count)}), now {new:.0f} rec/s ({cold:.1f} s): {new / old:.1f}x per '
              f'record; cached rerun {warm:.2f} s; per million records {row["old_h_per_million"]:.1f} h before, '
              f'{row["new_min_per_million"]:.1f} min now', flush=True)
        if flags.sft:
            cache = flags.dir / 'sft_cache'
            row['sft_off_s'] = sft_to_step_1(path, flags.dir, False, cache, fresh=True)
            row['sft_cold_s'] = sft_to_step_1(path, flags.dir, True, cache, fresh=True)
            row['sft_cached_s'] = sft_to_step_1(path, flags.dir, True, cache, fresh=False)
            row['sft_old_s'] = row['sft_off_s'] + count / old
            print(f'  command to step 1: check off {row["sft_off_s"]:.0f} s, check cold {row["sft_cold_s"]:.0f} s, '
                  f'cached {row["sft_cached_s"]:.0f} s (the check as it was: about {row["sft_old_s"]:.0f} s)',
                  flush=True)
        results[count] = row
    print(json.dumps(results))
    return results


if __name__ == '__main__':
    main()
