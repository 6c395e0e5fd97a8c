"""Training throughput and memory of the real Qwen3-VL 2B / 4B / 8B architectures on one CUDA GPU, no download.

    python benchmarks/gpu_throughput.py [--archs 2b 4b 8b] [--modes lora full] [--grad-ckpt off on]
                                        [--attn sdpa flash_attention_2] [--steps 10] [--batch 2] [--text-tokens 1024]

Each model is built with random weights from the architecture values in ``architectures.py`` (transcribed from the
``config.json`` of Qwen/Qwen3-VL-{2B,4B,8B}-Instruct on the Hugging Face hub), in bf16, on the GPU. Every combination
of the flags trains ``--steps`` AdamW steps (after 2 warm-up steps) on synthetic batches: ``--batch`` samples, each one
``--image`` pixel image (1024x768: 48x64 patches of 16 px, 768 merged vision tokens) followed by ``--text-tokens``
text tokens that all carry loss. LoRA: rank 16 on every linear layer of the LLM (the ViT and aligner frozen), as
``configs/qwen3_vl_4b/lora.yaml``; full: every parameter trains. flash-attn runs only when it is installed.

Printed per run: step time, tokens/s (LLM tokens: vision + text), MFU and peak GPU memory. Model FLOPs per sample
are ``k * (N_llm * T + N_vit * P) + 12 * L * d * T^2`` (PaLM's attention term): ``k`` = 6 for full fine-tuning
(forward 2, backward 4), 4 for LoRA (no weight gradients for the frozen weights), ``N`` the parameters of the LLM /
ViT, ``T`` LLM tokens and ``P`` ViT patches per sample, ``L`` layers and ``d`` the hidden size. MFU is achieved FLOP/s
over the bf16 dense peak (989 TFLOP/s for H100 / H200 SXM, ``--peak-tflops`` for other GPUs).

Without CUDA it exits with a message (status 2); ``--cpu-smoke`` runs one step of a tiny architecture on the CPU in
float32 to keep this script working in CI.
"""
from __future__ import annotations

import argparse
import gc
import importlib.util
import itertools
import sys
import time
from dataclasses import dataclass

import torch
from architectures import ARCHS, IMAGE_PAD, VISION_END, VISION_START, VOCAB_SIZE, text_config, vision_config

PEAK_TFLOPS = {'H100': 989.0, 'H200': 989.0, 'H800': 989.0, 'A100': 312.0, 'A800': 312.0, 'L40S': 362.0}
"""bf16 dense tensor-core peak by GPU name."""


def build_config(arch: str):
    from transformers import Qwen3VLConfig

    text = dict(text_config(arch), vocab_size=VOCAB_SIZE)
    vision = dict(vision_config(arch), out_hidden_size=text['hidden_size'])
    return Qwen3VLConfig(text_config=text, vision_config=vision, image_token_id=IMAGE_PAD,
                         vision_start_token_id=VISION_START, vision_end_token_id=VISION_END,
                         tie_word_embeddings=ARCHS[arch]['tie_word_embeddings'])


@dataclass
class Batch:
    inputs: dict
    llm_tokens: int
    """LLM tokens per sample (vision + text)."""
    patches: int
    """ViT patches per sample."""


def synthetic_batch(batch: int, image: tuple[int, int], text_tokens: int, device, dtype) -> Batch:
    width, height = image
    grid_h, grid_w = height // 16, width // 16
    patches = grid_h * grid_w
    vision_tokens = patches // 4
    ids = torch.cat([torch.tensor([VISION_START]), torch.full((vision_tokens, ), IMAGE_PAD),
                     torch.tensor([VISION_END]), torch.randint(0, 151000, (text_tokens, ))])
    input_ids = ids.repeat(batch, 1)
    labels = input_ids.clone()
    labels[:, :vision_tokens + 2] = -100
    return Batch({
        'input_ids': input_ids.to(device),
        'attention_mask': torch.ones_like(input_ids, device=device),
        'mm_token_type_ids': (input_ids == IMAGE_PAD).long().to(device),  # image 1, text 0, as the processor returns
        'labels': labels.to(device),
        'pixel_values': torch.randn(batch * patches, 3 * 2 * 16 * 16, dtype=dtype, device=device),
        'image_grid_thw': torch.tensor([[1, grid_h, grid_w]] * batch, device=device),
    }, len(ids), patches)


def count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def sample_flops(model, batch: Batch, mode: str) -> float:
    """Model FLOPs of one training sample (see the module docstring)."""
    text = model.config.text_config
    n_vit = count(model.model.visual)
    n_llm = count(model.model.language_model) + (0 if model.config.tie_word_embeddings else count(model.lm_head))
    k = 6 if mode == 'full' else 4
    t = batch.llm_tokens
    return k * (n_llm * t + n_vit * batch.patches) + 12 * text.num_hidden_layers * text.hidden_size * t * t


def build_model(arch: str, mode: str, grad_ckpt: bool, attn: str, device, dtype):
    from transformers import Qwen3VLForConditionalGeneration

    torch.manual_seed(0)
    with torch.device(device):
        model = Qwen3VLForConditionalGeneration._from_config(build_config(arch), dtype=dtype,
                                                             attn_implementation=attn)
    if grad_ckpt:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        model.config.use_cache = False
    if mode == 'lora':
        from peft import LoraConfig, get_peft_model

        if grad_ckpt:
            model.enable_input_require_grads()
        target = r'.*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)'
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, target_modules=target))
    return model


def run(arch: str, mode: str, grad_ckpt: bool, attn: str, flags, device, dtype) -> dict:
    model = build_model(arch, mode, grad_ckpt, attn, device, dtype)
    base = model.get_base_model() if mode == 'lora' else model
    batch = synthetic_batch(flags.batch, flags.image, flags.text_tokens, device, dtype)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    cuda = device.type == 'cuda'

    def step():
        loss = model(**batch.inputs).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(flags.warmup):
        step()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    for _ in range(flags.steps):
        step()
    if cuda:
        torch.cuda.synchronize()
    seconds = (time.perf_counter() - start) / flags.steps
    flops = sample_flops(base, batch, mode) * flags.batch
    result = {
        'arch': arch, 'mode': mode, 'grad_ckpt': grad_ckpt, 'attn': attn,
        'params': count(base), 'trainable': trainable, 'step_s': seconds,
        'tokens_s': batch.llm_tokens * flags.batch / seconds,
        'tflops_per_token': flops / (batch.llm_tokens * flags.batch) / 1e12,
        'achieved_tflops': flops / seconds / 1e12,
        'peak_gib': torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
    }
    return result  # the model, optimizer and batch are freed with this frame; main() then empties the cache


def peak_tflops(flags) -> float | None:
    if flags.peak_tflops:
        return flags.peak_tflops
    if not torch.cuda.is_available():
        return None
    name = torch.cuda.get_device_name()
    return next((value for key, value in PEAK_TFLOPS.items() if key in name), None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--archs', nargs='+', default=['2b', '4b', '8b'], choices=list(ARCHS))
    parser.add_argument('--modes', nargs='+', default=['lora', 'full'], choices=['lora', 'full'])
    parser.add_argument('--grad-ckpt', nargs='+', default=['off', 'on'], choices=['off', 'on'])
    parser.add_argument('--attn', nargs='+', default=['sdpa', 'flash_attention_2'],
                        choices=['sdpa', 'flash_attention_2', 'eager'])
    parser.add_argument('--steps', type=int, default=10)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--batch', type=int, default=2)
    parser.add_argument('--image', type=int, nargs=2, default=[1024, 768], metavar=('W', 'H'),
                        help='image size in pixels, multiples of 32')
    parser.add_argument('--text-tokens', type=int, default=1024)
    parser.add_argument('--peak-tflops', type=float, help='bf16 dense peak of the GPU, for MFU')
    parser.add_argument('--cpu-smoke', action='store_true', help='one step of the tiny architecture on the CPU')
    flags = parser.parse_args(argv)
    if any(v % 32 for v in flags.image):
        parser.error(f'--image {flags.image[0]} {flags.image[1]}: both sides must be multiples of 32')

    if flags.cpu_smoke:
        device, dtype = torch.device('cpu'), torch.float32
        flags.archs, flags.attn, flags.steps, flags.warmup, flags.batch = ['tiny'], ['sdpa'], 1, 0, 1
        flags.image, flags.text_tokens = [64, 64], 16
    elif not torch.cuda.is_available():
        print('gpu_throughput.py measures a CUDA GPU and none is visible (torch.cuda.is_available() is False); run '
              'it on a GPU machine, or pass --cpu-smoke to check that the script works.', file=sys.stderr)
        return 2
    else:
        device, dtype = torch.device('cuda'), torch.bfloat16
    attns = [a for a in flags.attn if a != 'flash_attention_2' or importlib.util.find_spec('flash_attn')]
    if len(attns) < len(flags.attn):
        print('flash-attn is not installed: flash_attention_2 runs skipped', flush=True)
    peak = peak_tflops(flags)
    device_name = torch.cuda.get_device_name() if device.type == 'cuda' else 'CPU'
    print(f'device: {device_name}; batch {flags.batch} x ({flags.image[0]}x{flags.image[1]} image + '
          f'{flags.text_tokens} text tokens); {flags.steps} steps after {flags.warmup} warm-up; '
          f'peak {peak or "unknown"} TFLOP/s', flush=True)
    header = (f'{"arch":>4} {"mode":>4} {"ckpt":>4} {"attn":>17} {"params":>7} {"trainable":>9} {"step s":>7} '
              f'{"tokens/s":>9} {"GFLOP/tok":>9} {"MFU":>6} {"peak GiB":>8}')
    print(header, flush=True)
    for arch, mode, ckpt, attn in itertools.product(flags.archs, flags.modes, flags.grad_ckpt, attns):
        try:
            r = run(arch, mode, ckpt == 'on', attn, flags, device, dtype)
        except torch.cuda.OutOfMemoryError:
            r = None
        gc.collect()
        if device.type == 'cuda':
            torch.cuda.empty_cache()
        if r is None:
            print(f'{arch:>4} {mode:>4} {ckpt:>4} {attn:>17}  out of GPU memory', flush=True)
            continue
        mfu = f'{r["achieved_tflops"] / peak:6.1%}' if peak else '     -'
        memory = f'{r["peak_gib"]:8.1f}' if r['peak_gib'] is not None else '       -'
        print(f'{arch:>4} {mode:>4} {ckpt:>4} {attn:>17} {r["params"] / 1e9:6.2f}B {r["trainable"] / 1e6:8.2f}M '
              f'{r["step_s"]:7.3f} {r["tokens_s"]:9.0f} {r["tflops_per_token"] * 1e3:8.2f}G {mfu} {memory}',
              flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
