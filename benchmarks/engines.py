"""What each distributed engine costs per process, against plain data parallelism, measured in one run.

    python benchmarks/engines.py --arch 2b --dtype bfloat16 [--steps 3] [--dir /tmp/engines]   # 2 CPU processes
    python benchmarks/engines.py --arch tiny --steps 2                                          # in a minute

For each of DDP, DeepSpeed ZeRO-2, ZeRO-3 and FSDP2 the project's entrypoint (``scripts/train.sh`` with
``NPROC_PER_NODE=2``, gloo on a machine without CUDA) trains ``--steps`` steps of the 4B LoRA recipe
(``configs/qwen3_vl_4b/lora.yaml``: rank 16 on every linear layer, ViT frozen) on a random checkpoint of the real
architecture (``architectures.py``) and generated dense-caption records (``--image`` pixels, ``--objects`` objects).
A trainer callback from a plugin file records, per process, the memory it holds after step 1 (resident or swapped
out), the peak resident memory (``ru_maxrss``: loading included) and the parameter and optimizer-state elements it
holds after step 1; the step time is the trainer's ``train_runtime`` divided by the steps (model loading excluded).
Printed: one row per engine and the ratios to DDP.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'benchmarks'))
ENGINES = {'ddp': {}, 'zero2': {'deepspeed': {'enabled': True, 'config': 'zero2'}},
           'zero3': {'deepspeed': {'enabled': True, 'config': 'zero3'}}, 'fsdp2': {'training': {'fsdp': 'fsdp2'}}}
PLUGIN = """import json, os, resource
import torch
from swift.callbacks import callbacks_map
from swift.callbacks.base import TrainerCallback


def _local(t):
    if hasattr(t, 'ds_tensor'):
        return t.ds_tensor.numel()
    return t.to_local().numel() if hasattr(t, 'to_local') else t.numel()


class PerRank(TrainerCallback):
    def on_step_end(self, args, state, control, model=None, **kwargs):
        optimizer = self.trainer.optimizer
        while not isinstance(optimizer, torch.optim.Optimizer) or not hasattr(optimizer, 'state'):
            optimizer = optimizer.optimizer
        with open('/proc/self/status') as status:  # what the process holds while it trains, in RAM or swapped out
            kib = {k: int(v.split()[0]) for k, v in (line.split(':', 1) for line in status) if k in ('VmRSS', 'VmSwap')}
        resident = sum(kib.values()) / 2**20
        row = {'peak_rss_gib': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 'rss_gib': resident,
               'params': sum(_local(p) for p in model.parameters()),
               'optimizer': sum(_local(v) for s in optimizer.state.values() for k, v in s.items()
                                if torch.is_tensor(v) and k != 'step')}
        with open(os.path.join(args.output_dir, f'per_rank_{os.environ.get("RANK", "0")}.json'), 'w') as f:
            json.dump(row, f)


callbacks_map['per_rank'] = PerRank
"""


def run(engine: str, recipe: Path, root: Path, steps: int) -> dict:
    """Train ``steps`` steps under ``engine`` with two processes; the per-rank figures and the step time."""
    from src.trainers.engines import free_port

    out = root / engine
    plugin = root / 'per_rank_plugin.py'
    plugin.write_text(PLUGIN)
    sections = ENGINES[engine]
    config = root / f'{engine}.yaml'
    config.write_text(yaml.safe_dump({
        'extends': str(recipe),
        'training': {'output_dir': str(out), 'add_version': False, 'overwrite_output_dir': True, 'max_steps': steps,
                     'save_strategy': 'no', 'eval_strategy': 'no', 'logging_steps': steps, 'report_to': [],
                     'dataloader_num_workers': 0, 'external_plugins': [str(plugin)], 'callbacks': ['per_rank'],
                     'gradient_checkpointing': engine != 'fsdp2', **sections.get('training', {})},
        'custom': {'val_jsonl': None, 'encode_check': False},
        **{k: v for k, v in sections.items() if k != 'training'},
    }, sort_keys=False))
    env = {k: v for k, v in os.environ.items() if k not in ('WORLD_SIZE', 'RANK', 'LOCAL_RANK')}
    env.update(NPROC_PER_NODE='2', MASTER_PORT=str(free_port()), PYTHON=sys.executable)
    done = subprocess.run([str(REPO / 'scripts' / 'train.sh'), str(config)], cwd=REPO, env=env, capture_output=True,
                          text=True)
    if done.returncode:
        raise SystemExit(f'{engine}: {done.stderr[-3000:]}')
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    runtime = next(r['train/train_runtime'] for r in rows if 'train/train_runtime' in r)
    ranks = [json.loads((out / f'per_rank_{rank}.json').read_text()) for rank in range(2)]
    return {'step_s': runtime / steps, 'peak_rss_gib': max(r['peak_rss_gib'] for r in ranks),
            'rss_gib': max(r['rss_gib'] for r in ranks),
            'params': max(r['params'] for r in ranks), 'optimizer': max(r['optimizer'] for r in ranks)}


def main(argv: list[str] | None = None) -> int:
    from kd_overhead import real_size_recipe

    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='2b', choices=['tiny', '2b', '4b', '8b'])
    parser.add_argument('--steps', type=int, default=3)
    parser.add_argument('--dir', default='/tmp/engines')
    parser.add_argument('--image', type=int, nargs=2, default=[256, 192], metavar=('W', 'H'))
    parser.add_argument('--objects', type=int, nargs=2, default=[3, 6], metavar=('LOW', 'HIGH'))
    parser.add_argument('--engines', nargs='+', default=list(ENGINES), choices=list(ENGINES))
    parser.add_argument('--dtype', choices=['float32', 'bfloat16'],
                        help='the weights\' dtype (default: bfloat16 on a GPU, float32 on a CPU; the 2B architecture '
                             'in float32 needs about 9 GB per process, so 2 CPU processes need bfloat16 under 24 GB)')
    flags = parser.parse_args(argv)
    root = Path(flags.dir)
    root.mkdir(parents=True, exist_ok=True)
    flags.batch, flags.grad_accum = 1, 1
    recipe, _, setup = real_size_recipe(flags, root)
    results = {engine: run(engine, recipe, root, flags.steps) for engine in flags.engines}
    print(f'{flags.arch} Qwen3-VL, LoRA recipe, 2 processes, {setup}; {flags.steps} steps of 1 sample per process')
    print(f'{"engine":<7} {"s/step":>8} {"RSS GiB":>8} {"peak RSS GiB":>13} {"params/rank":>13} {"optim/rank":>12}  '
          'vs DDP: time, RSS')
    base = results.get('ddp')
    for engine, r in results.items():
        ratio = f'{r["step_s"] / base["step_s"]:.2f}x, {r["rss_gib"] / base["rss_gib"]:.2f}x' if base else ''
        print(f'{engine:<7} {r["step_s"]:>8.2f} {r["rss_gib"]:>8.2f} {r["peak_rss_gib"]:>13.2f} {r["params"]:>13,} '
              f'{r["optimizer"]:>12,}  {ratio}')
    (root / 'engines.json').write_text(json.dumps(results, indent=1))
    return 0


if __name__ == '__main__':
    sys.exit(main())
