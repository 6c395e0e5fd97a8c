"""Wall-clock cost of forward-only GKD against plain SFT on the same data, steps and seed, measured in one run.

    python benchmarks/kd_overhead.py [--steps 20] [--dir /tmp/kd_overhead]

Both runs train the tiny Qwen3-VL LoRA recipe (configs/smoke/lora.yaml) on the smoke data. The GKD run adds
configs/smoke/gkd.yaml's overlay: the frozen base as teacher (the student with its adapter off), the logits JSD, visual
KD on the aligner and DeepStack mergers, and the monitor metrics. The figure compared is the trainer's own
`train_runtime` (model loading excluded). Target: GKD / SFT <= 1.5x. A third run with `llm_kd_weight: 0` separates
the cost of the logits JSD (over the full 152k vocabulary) from the teacher forward and the visual KD; a fourth
keeps only the teacher's top 64 logits per token (`rlhf.gkd_logits_topk: 64`), ms-swift's cheap JSD.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
TOP_K = 64
sys.path.insert(0, str(REPO))


def run(name: str, parent: str, steps: int, root: Path, **sections: dict) -> float:
    """Train ``steps`` steps with ``configs/smoke/<parent>``; returns the trainer's train_runtime in seconds."""
    from src.sft import main

    out = root / name
    config = root / f'{name}.yaml'
    config.write_text(yaml.safe_dump({
        'extends': str(REPO / 'configs' / 'smoke' / parent),
        'training': {'output_dir': str(out), 'max_steps': steps, 'save_strategy': 'no', 'eval_strategy': 'no',
                     'logging_steps': steps, 'report_to': []},
        'custom': {'val_jsonl': None, 'encode_check': False},
        **sections,
    }))
    if (out / 'logging.jsonl').exists():
        (out / 'logging.jsonl').unlink()
    main(config)
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    return next(r['train/train_runtime'] for r in rows if 'train/train_runtime' in r)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--steps', type=int, default=20, help='optimizer steps per run')
    parser.add_argument('--dir', default='/tmp/kd_overhead', help='where the run outputs go')
    flags = parser.parse_args(argv)
    root = Path(flags.dir)
    root.mkdir(parents=True, exist_ok=True)
    run('warmup', 'lora.yaml', 1, root)  # first-use costs (tiny model build, imports) stay out of the figures
    sft = run('sft', 'lora.yaml', flags.steps, root)
    gkd = run('gkd', 'gkd.yaml', flags.steps, root)
    no_jsd = run('gkd_no_llm_kd', 'gkd.yaml', flags.steps, root, rlhf={'llm_kd_weight': 0.0})
    top_k = run('gkd_topk', 'gkd.yaml', flags.steps, root, rlhf={'gkd_logits_topk': TOP_K})
    print(f'machine: {os.cpu_count()} CPUs; {flags.steps} steps, per-device batch 2, tiny Qwen3-VL, float32 CPU')
    print(f'plain SFT (LoRA)        {sft:8.2f} s  {sft / flags.steps:6.3f} s/step')
    print(f'GKD forward-only + VKD  {gkd:8.2f} s  {gkd / flags.steps:6.3f} s/step')
    print(f'GKD, llm_kd_weight 0    {no_jsd:8.2f} s  {no_jsd / flags.steps:6.3f} s/step  (teacher forward + VKD, '
          'no logits JSD)')
    print(f'GKD, top-{TOP_K} JSD         {top_k:8.2f} s  {top_k / flags.steps:6.3f} s/step  (rlhf.gkd_logits_topk: '
          f'{TOP_K})')
    print(f'ratio GKD / SFT         {gkd / sft:8.2f}x  (target <= 1.5x)')
    print(f'ratio without JSD       {no_jsd / sft:8.2f}x')
    print(f'ratio top-{TOP_K} GKD / SFT  {top_k / sft:8.2f}x')
    return 0


if __name__ == '__main__':
    sys.exit(main())
