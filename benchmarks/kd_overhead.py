"""Wall-clock cost of forward-only GKD against plain SFT on the same data, steps and seed, measured in one run.

    python benchmarks/kd_overhead.py [--steps 20] [--dir /tmp/kd_overhead]          # smoke model and recipe, CPU
    python benchmarks/kd_overhead.py --arch 4b [--steps 20]                          # real size, on a GPU
    python benchmarks/kd_overhead.py --arch 2b --image 256 192 --objects 3 6 --batch 1 --grad-accum 1 \
        --steps 4 --repeats 2                                                        # real size, on a CPU

Every run goes through the project's entrypoint (``src.sft.main``). The SFT run trains a recipe; the GKD runs add the
overlay of ``configs/smoke/gkd.yaml`` (its ``rlhf`` block and the ``custom`` KD blocks): forward-only GKD with the
frozen base as teacher (the student with its adapter off, so no second model is loaded), the logits JSD, visual KD on
the aligner and the DeepStack mergers, and the monitor metrics. A run with ``llm_kd_weight: 0`` separates the cost of
the logits JSD (over the full 152k vocabulary) from the teacher forward and the visual KD; a run with
``rlhf.gkd_logits_topk: 64`` keeps only the teacher's top 64 logits per token (ms-swift's cheap JSD). The figure
compared is the trainer's own ``train_runtime`` (model loading excluded); with ``--repeats N`` the runs are
repeated in turn and each figure is the median of its N; ``--runs`` times only some of the four (the GPU suite: sft
and gkd). All runs share one process, after a warm-up that trains the recipe for the same steps on the same data,
so that every timed run finds the same batch shapes already seen. Each run's time is printed as it ends, so a stopped
benchmark keeps what it measured. Target: GKD / SFT <= 1.5x.

- ``--arch smoke`` (default): the tiny random Qwen3-VL of the smoke configs (hidden size 32) on the smoke recipe
  and data (``configs/smoke/lora.yaml``), float32. Its step is almost only the 152k-vocabulary projection, so the
  JSD over that vocabulary weighs far more than in a real model.
- ``--arch 2b|4b|8b``: a randomly initialised checkpoint with the real Qwen3-VL architecture (``architectures.py``)
  and the offline tokenizer and processor is written under ``--dir`` once. The recipe is the 4B LoRA recipe
  (``configs/qwen3_vl_4b/lora.yaml``: rank 16 on all linear layers, ViT frozen, gradient checkpointing), trained on
  generated dense-caption records (``--image`` pixels with ``--objects`` objects each, as ``data_throughput.py``
  writes them), in bf16 with FlashAttention-2 on a GPU (SDPA when flash-attn is not installed) and in float32 with
  SDPA on the CPU, where the records load in the training process (no loader workers). ``--batch`` /
  ``--grad-accum`` override the recipe's 4 x 4. ``--arch tiny`` takes the same path with a tiny architecture, to
  check it on a CPU in seconds.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / 'benchmarks'))
TOP_K = 64
GKD_OVERLAY = REPO / 'configs' / 'smoke' / 'gkd.yaml'
SMOKE_RECIPE, SMOKE_MODEL = REPO / 'configs' / 'smoke' / 'lora.yaml', REPO / '.cache' / 'tiny-qwen3-vl'
REAL_RECIPE = REPO / 'configs' / 'qwen3_vl_4b' / 'lora.yaml'


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def real_size_recipe(flags, root: Path) -> tuple[Path, Path, str]:
    """(recipe config, model checkpoint, device line) for an architecture of ``architectures.py``: the random
    checkpoint and the generated records are written once under ``root``."""
    import torch
    from architectures import ARCHS, text_config, vision_config
    from data_throughput import make_data

    from src.testing.tiny_model import build_tiny_model

    cuda = torch.cuda.is_available()
    dtype = getattr(flags, 'dtype', None) or ('bfloat16' if cuda else 'float32')
    model = root / f'qwen3-vl-{flags.arch}-random-{dtype}'
    if not (model / 'config.json').is_file():
        print(f'writing a random {flags.arch} checkpoint to {model}', flush=True)
        width, height = flags.image
        build_tiny_model(model, text=text_config(flags.arch), vision=vision_config(flags.arch),
                         tie_word_embeddings=ARCHS[flags.arch]['tie_word_embeddings'],
                         max_tokens=width * height // 1024, dtype=getattr(torch, dtype))
    records = max(64, flags.steps * (flags.batch or 4) * (flags.grad_accum or 4))
    data, _ = make_data(root / 'data', records, tuple(flags.image), tuple(flags.objects))
    attn = 'flash_attn' if cuda and importlib.util.find_spec('flash_attn') else 'sdpa'
    # On a CPU the recipe's 4 loader processes would compete with the training for the same cores; and the runs
    # here follow one another in one process, where each finished run's workers took 5 s apiece to stop.
    training = {} if cuda else {'dataloader_num_workers': 0}
    if flags.batch:
        training['per_device_train_batch_size'] = flags.batch
    if flags.grad_accum:
        training['gradient_accumulation_steps'] = flags.grad_accum
    overlay = {
        'extends': str(REAL_RECIPE),
        'model': {'model': str(model), 'torch_dtype': dtype, 'attn_impl': attn},
        **({'training': training} if training else {}),  # an empty mapping would clear the recipe's own
        'custom': {'train_jsonl': str(data)},
    }
    longest, limit = longest_record(data, model), yaml.safe_load(REAL_RECIPE.read_text())['global_max_length']
    if longest > limit:  # the generated records must fit the recipe: the runs skip the up-front check for speed
        overlay['global_max_length'] = -(-longest // 256) * 256
        print(f'the longest generated record is {longest} tokens, over the recipe\'s {limit}: global_max_length '
              f'{overlay["global_max_length"]} for these runs', flush=True)
    recipe = write_yaml(root / f'recipe_{flags.arch}.yaml', overlay)
    device = torch.cuda.get_device_name() if cuda else f'CPU ({os.cpu_count()} cores)'
    return recipe, model, f'{device}, {dtype}, {attn}'


def longest_record(data: Path, model: Path) -> int:
    """The encoded length of the longest record of ``data`` with ``model``'s template (no length limit)."""
    from swift.model import get_processor
    from swift.template import get_template

    from src.datasets import DenseCaptionDataset

    template = get_template(get_processor(str(model), model_type='qwen3_vl'), max_length=None)
    template.set_mode('train')
    dataset = DenseCaptionDataset(data, template)
    return max(dataset.encoded_length(dataset.inputs(i)) for i in range(len(dataset)))


def gkd_overlay(root: Path, teacher: Path) -> Path:
    """``configs/smoke/gkd.yaml``'s GKD blocks as a config of their own, with ``teacher`` as the teacher."""
    blocks = yaml.safe_load(GKD_OVERLAY.read_text())
    custom = {key: blocks['custom'][key] for key in ('trainer_variant', 'visual_kd')}
    return write_yaml(root / 'gkd_overlay.yaml', {'rlhf': {**blocks['rlhf'], 'teacher_model': str(teacher)},
                                                  'custom': custom})


def run(name: str, parents: list[Path], steps: int, root: Path, rlhf: dict | None = None) -> tuple[float, int]:
    """Train ``steps`` steps with ``parents`` (and ``rlhf`` on top); (train_runtime in seconds, samples per step)."""
    from src.sft import main

    out = root / name
    config = write_yaml(root / f'{name}.yaml', {
        'extends': [str(p) for p in parents],
        'training': {'output_dir': str(out), 'add_version': False, 'overwrite_output_dir': True, 'max_steps': steps,
                     'save_strategy': 'no', 'eval_strategy': 'no', 'logging_steps': steps, 'report_to': []},
        'custom': {'val_jsonl': None, 'encode_check': False},
        **({'rlhf': rlhf} if rlhf else {}),
    })
    main(config)
    rows = [json.loads(line) for line in (out / 'logging.jsonl').read_text().splitlines()]
    args = json.loads((out / 'args.json').read_text())
    per_step = args['per_device_train_batch_size'] * args['gradient_accumulation_steps']
    return next(r['train/train_runtime'] for r in rows if 'train/train_runtime' in r), per_step


RUNS = {'sft': lambda recipe, overlay: ([recipe], None),
        'gkd': lambda recipe, overlay: ([recipe, overlay], None),
        'gkd_no_llm_kd': lambda recipe, overlay: ([recipe, overlay], {'llm_kd_weight': 0.0}),
        'gkd_topk': lambda recipe, overlay: ([recipe, overlay], {'gkd_logits_topk': TOP_K})}
"""Each run's (parent configs, rlhf overrides) from the recipe and the GKD overlay."""
LABELS = {'sft': 'plain SFT (LoRA)', 'gkd': 'GKD forward-only + VKD', 'gkd_no_llm_kd': 'GKD, llm_kd_weight 0',
          'gkd_topk': f'GKD, top-{TOP_K} JSD'}
NOTES = {'sft': '', 'gkd': '', 'gkd_no_llm_kd': '  (teacher forward + VKD, no logits JSD)',
         'gkd_topk': f'  (rlhf.gkd_logits_topk: {TOP_K})'}
RATIOS = {'gkd': 'ratio GKD / SFT', 'gkd_no_llm_kd': 'ratio without JSD', 'gkd_topk': f'ratio top-{TOP_K} GKD / SFT'}


def arguments() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--arch', default='smoke', choices=['smoke', '2b', '4b', '8b', 'tiny'])
    parser.add_argument('--steps', type=int, default=20, help='optimizer steps per run')
    parser.add_argument('--repeats', type=int, default=1, help='runs of each kind, alternating; the median counts')
    parser.add_argument('--dir', default='/tmp/kd_overhead', help='where the checkpoint, data and run outputs go')
    parser.add_argument('--image', type=int, nargs=2, default=[1024, 768], metavar=('W', 'H'),
                        help='real sizes: image size of the generated records (pixels, multiples of 32)')
    parser.add_argument('--objects', type=int, nargs=2, default=[20, 80], metavar=('LOW', 'HIGH'),
                        help='real sizes: objects per generated record')
    parser.add_argument('--batch', type=int, help='real sizes: per-device batch size (the recipe: 4)')
    parser.add_argument('--grad-accum', type=int, help='real sizes: gradient accumulation steps (the recipe: 4)')
    parser.add_argument('--runs', nargs='+', choices=list(RUNS), default=list(RUNS),
                        help='which runs to time (default: all; the ratios need sft)')
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = arguments()
    flags = parser.parse_args(argv)
    if any(v % 32 for v in flags.image):
        parser.error(f'--image {flags.image[0]} {flags.image[1]}: both sides must be multiples of 32')
    root = Path(flags.dir)
    root.mkdir(parents=True, exist_ok=True)
    if flags.arch == 'smoke':
        recipe, model, setup = SMOKE_RECIPE, SMOKE_MODEL, f'CPU ({os.cpu_count()} cores), float32, smoke data'
    else:
        recipe, model, setup = real_size_recipe(flags, root)
    overlay = gkd_overlay(root, model)
    runs = {name: RUNS[name](recipe, overlay) for name in flags.runs}
    # First-use costs stay out of the figures: the smoke model build and imports, and on a GPU each new batch shape's
    # kernels (an H200's first timed SFT run after a 1-step warm-up took 1.7x its second), so every step's batch.
    run('warmup', [recipe], flags.steps, root)
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(flags.repeats):  # alternating, so a slow spell of the machine hits every run alike
        for name, (parents, rlhf) in runs.items():
            runtime, per_step = run(name, parents, flags.steps, root, rlhf)
            seconds[name].append(runtime)
            print(f'run {name}: {runtime:.2f} s for {flags.steps} steps', flush=True)  # kept if a later run stops
    median = {name: statistics.median(values) for name, values in seconds.items()}
    spread = '' if flags.repeats == 1 else f', median of {flags.repeats} alternating runs each'
    print(f'{flags.arch} Qwen3-VL on {setup}; {flags.steps} steps of {per_step} samples{spread}')
    for name, value in median.items():
        print(f'{LABELS[name]:<24}{value:8.2f} s  {value / flags.steps:6.3f} s/step{NOTES[name]}')
    for name, label in RATIOS.items():
        if 'sft' in median and name in median:
            print(f'{label:<24}{median[name] / median["sft"]:8.2f}x{"  (target <= 1.5x)" if name == "gkd" else ""}')
    if flags.repeats > 1:
        print('all runs (s): ' + '; '.join(f'{name} ' + ' '.join(f'{v:.1f}' for v in values)
                                           for name, values in seconds.items()))
    return 0


if __name__ == '__main__':
    sys.exit(main())
