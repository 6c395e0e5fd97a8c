"""The prepared GPU check: one command for a short window on one offline GPU, every step guarded.

    bash benchmarks/gpu_suite.sh [--wheelhouse DIR] [--out results.md]      # on the GPU machine
    bash benchmarks/gpu_suite.sh --dry-run                                  # here: the plan, imports, wheels

Steps, in this order, each under its own time limit (together at most 9 minutes) so that one failure or overrun
does not stop the rest:

1. ``install``: the wheelhouse (``scripts/offline_wheelhouse.py``), ``pip install --no-index --no-deps``;
2. ``throughput``: ``gpu_throughput.py --archs 4b`` (LoRA, SDPA and flash-attn when it imports, gradient
   checkpointing off and on): raw transformers, tokens/s, MFU, peak memory;
3. ``entrypoint``: ``kd_overhead.py --arch 4b --steps 6``: the project's own entrypoint (``src.sft``) on a random 4B
   architecture in bf16, plain LoRA SFT and forward-only GKD, seconds per step and their ratio;
4. ``zero2`` / ``zero3``: two steps of the smoke LoRA / full recipes under DeepSpeed ZeRO-2 / ZeRO-3, when deepspeed
   imports.

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
BUDGET_S = 540
IMPORTS = ('torch', 'transformers', 'peft', 'accelerate', 'swift', 'trl', 'datasets', 'qwen_vl_utils')


@dataclass
class Step:
    name: str
    command: list[str]
    limit_s: int
    needs: tuple[str, ...] = ()
    """Modules the step needs; it is skipped (and says so) when one does not import."""


def zero_config(stage: str, out: Path) -> Path:
    """A two-step smoke config under DeepSpeed ``stage`` (LoRA for ZeRO-2, full weights for ZeRO-3)."""
    parent = 'lora.yaml' if stage == 'zero2' else 'full.yaml'
    path = out / f'{stage}.yaml'
    path.write_text(f'extends: {REPO / "configs" / "smoke" / parent}\n'
                    f'training: {{output_dir: {out / stage}, max_steps: 2, save_strategy: "no", eval_strategy: "no"}}\n'
                    f'custom: {{val_jsonl: null}}\n'
                    f'deepspeed: {{enabled: true, config: {stage}}}\n')
    return path


def plan(python: str, wheelhouse: Path | None, work: Path) -> list[Step]:
    steps = []
    if wheelhouse is not None:
        steps.append(Step('install', [python, '-m', 'pip', 'install', '--no-index', '--no-deps', '--quiet',
                                      *map(str, sorted(wheelhouse.glob('*.whl')))], 60))
    steps += [
        Step('throughput', [python, 'benchmarks/gpu_throughput.py', '--archs', '4b', '--modes', 'lora',
                            '--grad-ckpt', 'off', 'on', '--attn', 'sdpa', 'flash_attention_2', '--steps', '10'], 170,
             ('torch', 'transformers', 'peft')),
        Step('entrypoint', [python, 'benchmarks/kd_overhead.py', '--arch', '4b', '--steps', '6', '--dir',
                            str(work / 'kd')], 200, IMPORTS),
    ]
    for stage in ('zero2', 'zero3'):
        steps.append(Step(stage, [python, '-m', 'src.sft', '--config', str(zero_config(stage, work))], 50,
                          IMPORTS + ('deepspeed', )))
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
    print(f'plan: {len(steps)} steps, {total} s of limits (budget {BUDGET_S} s)')
    for step in steps:
        lacking = missing(step.needs)
        print(f'  {step.name:<11} {step.limit_s:>4} s  {shlex.join(step.command[1:4])} ...'
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
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    steps = plan(sys.executable, args.wheelhouse, args.work)
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
