"""The prepared GPU check: one command for a short window on one offline GPU, every step guarded.

    bash benchmarks/gpu_suite.sh [--wheelhouse DIR] [--out results.md]      # on the GPU machine
    bash benchmarks/gpu_suite.sh --dry-run                                  # here: the plan, imports, wheels

Steps, in this order, each under its own time limit (together at most 9.5 minutes; with ``--throughput`` a minute
more, which no longer fits one 10-minute device call) so that one failure or overrun does not stop the rest:

1. ``install``: the wheelhouse (``scripts/offline_wheelhouse.py``), ``pip install --no-index --no-deps``;
2. ``zero2`` / ``zero3`` / ``fsdp2`` / ``zero2_offload`` / ``zero3_offload``: two steps of the smoke LoRA recipe
   under DeepSpeed ZeRO-2 (and its offload preset) and of the full recipe under ZeRO-3 (and its offload preset) and
   FSDP2 (the presets as written, precision following the model's dtype), each ending with a saved checkpoint; the
   DeepSpeed steps when deepspeed imports. The offload presets build DeepSpeed's CPU Adam on first use, hence their
   longer limit;
3. ``entrypoint``: ``kd_overhead.py --arch 4b --steps 3 --runs sft gkd``: the project's own entrypoint (``src.sft``)
   on a random 4B architecture in bf16, plain LoRA SFT and forward-only GKD, seconds per step and their ratio; each
   run's time is printed as it ends, so a step stopped at its limit still reports what it measured;
4. with ``--throughput`` only: ``gpu_throughput.py --archs 4b`` (LoRA, SDPA and flash-attn when it imports, gradient
   checkpointing off and on): raw transformers, not this project's code, so its figures change only with the
   libraries (docs/performance.md has them).

The results go to stdout and, as markdown (a status table, then each step's own output), to ``--out``.
"""
from __future__ import annotations

import argparse
import importlib.util
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = 570  # one device call's limit is 10 minutes; the default plan, install included, fits with 30 s to spare
IMPORTS = ('torch', 'transformers', 'peft', 'accelerate', 'swift', 'trl', 'datasets', 'qwen_vl_utils')


@dataclass
class Step:
    name: str
    command: list[str]
    limit_s: int
    needs: tuple[str, ...] = ()
    """Modules the step needs; it is skipped (and says so) when one does not import."""


ENGINES = {'zero2': ('lora.yaml', 'deepspeed: {enabled: true, config: zero2}\n', 50),
           'zero3': ('full.yaml', 'deepspeed: {enabled: true, config: zero3}\n', 50),
           'fsdp2': ('full.yaml', '', 50),
           'zero2_offload': ('lora.yaml', 'deepspeed: {enabled: true, config: zero2_offload}\n', 80),
           'zero3_offload': ('full.yaml', 'deepspeed: {enabled: true, config: zero3_offload}\n', 80)}
"""engine -> (smoke recipe, config section, time limit in seconds)."""


def engine_config(engine: str, out: Path) -> Path:
    """A two-step smoke config under ``engine`` (LoRA for ZeRO-2, full weights for ZeRO-3 and FSDP2), saving at
    step 2."""
    parent, section, _ = ENGINES[engine]
    fsdp = ', fsdp: fsdp2' if engine == 'fsdp2' else ''
    path = out / f'{engine}.yaml'
    path.write_text(f'extends: {REPO / "configs" / "smoke" / parent}\n'
                    f'training: {{output_dir: {out / engine}, max_steps: 2, save_steps: 2, eval_strategy: "no", '
                    f'overwrite_output_dir: true{fsdp}}}\n'
                    f'custom: {{val_jsonl: null}}\n' + section)
    return path


def plan(python: str, wheelhouse: Path | None, work: Path, throughput: bool = False) -> list[Step]:
    steps = []
    if wheelhouse is not None:
        steps.append(Step('install', [python, '-m', 'pip', 'install', '--no-index', '--no-deps', '--quiet',
                                      *map(str, sorted(wheelhouse.glob('*.whl')))], 40))
    for engine, (_, _, limit) in ENGINES.items():
        needs = IMPORTS + (('deepspeed', ) if engine.startswith('zero') else ())
        # torchrun with one process: FSDP needs a process group even on one GPU
        steps.append(Step(engine, [python, '-m', 'torch.distributed.run', '--nproc_per_node', '1', '--master_port',
                                   '29561', '-m', 'src.sft', '--config', str(engine_config(engine, work))], limit,
                          needs))
    # an H200 took 100 s to write the random 4B checkpoint and measure the records, then about 25 s per run
    steps.append(Step('entrypoint', [python, 'benchmarks/kd_overhead.py', '--arch', '4b', '--steps', '3', '--batch',
                                     '2', '--grad-accum', '2', '--runs', 'sft', 'gkd', '--dir', str(work / 'kd')],
                      220, IMPORTS))
    if throughput:
        steps.append(Step('throughput', [python, 'benchmarks/gpu_throughput.py', '--archs', '4b', '--modes', 'lora',
                                         '--grad-ckpt', 'off', 'on', '--attn', 'sdpa', 'flash_attention_2', '--steps',
                                         '10'], 60, ('torch', 'transformers', 'peft')))
    return steps


def missing(modules: tuple[str, ...]) -> list[str]:
    return [m for m in modules if importlib.util.find_spec(m) is None]


def run_step(step: Step) -> tuple[str, float, str]:
    """(status, seconds, output tail) of one step; never raises."""
    if lacking := missing(step.needs):
        return f'skipped: {", ".join(lacking)} not importable', 0.0, ''
    start = time.monotonic()
    try:
        done = subprocess.run(step.command, cwd=REPO, capture_output=True, text=True, timeout=step.limit_s)
        status = 'ok' if done.returncode == 0 else f'failed (exit {done.returncode})'
        output = done.stdout + ('' if done.returncode == 0 else done.stderr)
    except subprocess.TimeoutExpired as exc:
        status = f'stopped at its {step.limit_s} s limit'
        output = (exc.stdout or b'').decode(errors='replace') if isinstance(exc.stdout, bytes) else (exc.stdout or '')
    return status, time.monotonic() - start, '\n'.join(output.strip().splitlines()[-25:])


def device_name() -> str:
    try:
        import torch

        return torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA device'
    except Exception as exc:  # noqa: BLE001 - the report says what it could not read
        return f'unknown ({exc})'


def markdown(device: str, results: list[tuple[Step, str, float, str]]) -> str:
    lines = [f'## GPU suite on {device}', '', '| step | status | seconds | limit |', '|---|---|---|---|']
    lines += [f'| {s.name} | {status} | {seconds:.0f} | {s.limit_s} |' for s, status, seconds, _ in results]
    for step, _, _, output in results:
        if output:
            lines += ['', f'### {step.name}', '', f'`{shlex.join(step.command[:4])} ...`', '', '```', output, '```']
    return '\n'.join(lines) + '\n'


def dry_run(steps: list[Step]) -> int:
    """The plan, what imports here, and the wheels an offline node would need: checked without a GPU."""
    total = sum(s.limit_s for s in steps)
    over = '' if total <= BUDGET_S else ': over the budget, so run the extra steps in a call of their own'
    print(f'plan: {len(steps)} steps, {total} s of limits (budget {BUDGET_S} s){over}')
    for step in steps:
        lacking = missing(step.needs)
        print(f'  {step.name:<13} {step.limit_s:>4} s  {shlex.join(step.command[1:4])} ...'
              f'{"  (would skip: " + ", ".join(lacking) + ")" if lacking else ""}')
        for arg in step.command[1:3]:
            if arg.endswith('.py') and not (REPO / arg).is_file():
                print(f'error: {arg} does not exist', file=sys.stderr)
                return 1
    print(f'imports here: {", ".join(m for m in IMPORTS if not missing((m, )))}')
    wheels = subprocess.run([sys.executable, str(REPO / 'scripts' / 'offline_wheelhouse.py'), '--dry-run',
                             '--have-preset', 'gpu-node', '--skip', 'av,decord'], capture_output=True, text=True)
    print(wheels.stdout.strip().splitlines()[0] if wheels.returncode == 0 else f'wheel plan failed: {wheels.stderr}')
    return 0 if total <= BUDGET_S and wheels.returncode == 0 else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--wheelhouse', type=Path, help='wheels to install first (scripts/offline_wheelhouse.py)')
    parser.add_argument('--out', type=Path, default=Path('gpu_suite_results.md'))
    parser.add_argument('--work', type=Path, default=Path('/tmp/gpu_suite'), help='checkpoints and runs')
    parser.add_argument('--dry-run', action='store_true', help='check the plan, imports and wheel list; run nothing')
    parser.add_argument('--throughput', action='store_true',
                        help="also measure raw transformers' LoRA throughput (gpu_throughput.py, 60 s)")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    steps = plan(sys.executable, args.wheelhouse, args.work, args.throughput)
    if args.dry_run:
        return dry_run(steps)
    results = []
    for step in steps:
        print(f'== {step.name} (limit {step.limit_s} s)', flush=True)
        status, seconds, output = run_step(step)
        print(output, f'-> {status} in {seconds:.0f} s', sep='\n', flush=True)
        results.append((step, status, seconds, output))
    report = markdown(device_name(), results)
    args.out.write_text(report)
    print(report)
    return 0 if all(status == 'ok' or status.startswith('skipped') for _, status, _, _ in results) else 1


if __name__ == '__main__':
    sys.exit(main())
