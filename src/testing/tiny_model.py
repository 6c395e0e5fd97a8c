"""A small (about 20 MB), randomly initialised Qwen3-VL (or Qwen2.5-VL) checkpoint built offline.

Tests and smoke configs cannot download ``Qwen/Qwen3-VL-*``, so this module writes a checkpoint with the real
architecture (``Qwen3VLForConditionalGeneration``: 2 text layers, a depth-2 vision tower with two DeepStack mergers),
a byte-level BPE tokenizer that carries the Qwen special tokens and the Qwen3-VL chat template, and the image
processor config, so that ``transformers`` and ms-swift (model type / template ``qwen3_vl``) load it as they would
the real model.

Command line: ``python scripts/make_tiny_model.py OUT_DIR [--arch qwen2_5_vl]``.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import torch

# The Qwen2.5 / Qwen3 special tokens, in the order the real tokenizer assigns them ids 151643, 151644, ...
QWEN_REGULAR_VOCAB = 151643
QWEN_VOCAB_SIZE = 151936  # the embedding rows of the real checkpoints (a few spare rows past the tokenizer)
QWEN_SPECIAL_TOKENS = [
    '<|endoftext|>', '<|im_start|>', '<|im_end|>', '<|object_ref_start|>', '<|object_ref_end|>', '<|box_start|>',
    '<|box_end|>', '<|quad_start|>', '<|quad_end|>', '<|vision_start|>', '<|vision_end|>', '<|vision_pad|>',
    '<|image_pad|>', '<|video_pad|>'
]
# Not "special" in the real tokenizer (they are decoded), but single added tokens.
QWEN_ADDED_TOKENS = [
    '<tool_call>', '</tool_call>', '<|fim_prefix|>', '<|fim_middle|>', '<|fim_suffix|>', '<|fim_pad|>',
    '<|repo_name|>', '<|file_sep|>', '<tool_response>', '</tool_response>', '<think>', '</think>'
]

# The chat template shipped with Qwen3-VL-*-Instruct (tool-call branch included), so that
# ``processor.apply_chat_template`` renders images as <|vision_start|><|image_pad|><|vision_end|>; kept as the file
# it is in the real checkpoint.
QWEN3_VL_CHAT_TEMPLATE = (Path(__file__).parent / 'qwen3_vl_chat_template.jinja').read_text()


# Text the BPE merges are learned from: the words and characters the dense-caption / grounding / summary tasks
# emit (JSON punctuation, digits, English and Chinese labels), so encoded samples stay short.
_CORPUS = [
    'You are a helpful assistant. Describe the image. List every object with its bounding box.',
    '{"desc": "car", "bbox_2d": [12, 34, 560, 780]}, {"desc": "person", "poly": [1, 2, 3, 4, 5, 6]}',
    '[{"desc": "traffic light", "line": [100, 200, 300, 400]}] 0123456789 0 1 2 3 4 5 6 7 8 9 10 100 1000',
    'The quick brown fox jumps over the lazy dog. A cat sits on a red mat near the window.',
    '无关图片 图片 目标 统计 标签 车辆 行人 摘要 检测 数据集 共 个',
    'summary: objects total dataset header json grounding dense caption image text assistant user system',
]

TINY_TEXT = dict(
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=2,
    num_key_value_heads=1,
    head_dim=16,
    max_position_embeddings=4096,
    # mrope_section sums to head_dim / 2 (t, h, w rotary frequencies).
    rope_parameters={
        'rope_type': 'default',
        'rope_theta': 5000000.0,
        'mrope_section': [2, 3, 3],
    },
)


@dataclass(frozen=True)
class TinyArch:
    """What differs between the Qwen-VL generations the tiny builder covers."""

    config_cls: str
    model_cls: str
    video_processor_cls: str
    vision: dict
    rope_extra: dict


TINY_ARCHS = {
    'qwen3_vl': TinyArch(
        config_cls='Qwen3VLConfig',
        model_cls='Qwen3VLForConditionalGeneration',
        video_processor_cls='Qwen3VLVideoProcessor',
        vision=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=16,
            spatial_merge_size=2,
            temporal_patch_size=2,
            num_position_embeddings=64,  # an 8x8 grid, interpolated to the image's patch grid
            deepstack_visual_indexes=[0, 1],
        ),
        rope_extra={'mrope_interleaved': True},
    ),
    'qwen2_5_vl': TinyArch(
        config_cls='Qwen2_5_VLConfig',
        model_cls='Qwen2_5_VLForConditionalGeneration',
        video_processor_cls='Qwen2VLVideoProcessor',
        vision=dict(
            depth=2,
            hidden_size=32,
            intermediate_size=64,
            num_heads=2,
            patch_size=14,
            spatial_merge_size=2,
            temporal_patch_size=2,
            window_size=56,  # 4x4 patches per attention window
            fullatt_block_indexes=[1],
        ),
        rope_extra={},
    ),
}
# Pixels per merged image token: (patch_size * spatial_merge_size) ** 2; images are kept between 1 and 64 tokens.
MIN_TOKENS, MAX_TOKENS = 1, 64
MARKER = '.tiny_model.json'
"""Written last into a tiny model folder: its build finished."""


def _build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    learner = Tokenizer(models.BPE())
    learner.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(
        vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    learner.train_from_iterator(_CORPUS, trainer=trainer)
    learned = json.loads(learner.to_str())['model']
    # ms-swift's Qwen templates hard-code the real special-token ids (<|image_pad|> = 151655, ...), so the regular
    # vocabulary is padded with unreachable filler entries up to Qwen's size and the special tokens land on their ids.
    vocab = dict(learned['vocab'])
    vocab.update({f'<|filler_{i}|>': i for i in range(len(vocab), QWEN_REGULAR_VOCAB)})
    merges = [tuple(m.split(' ')) if isinstance(m, str) else tuple(m) for m in learned['merges']]
    bpe = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    bpe.decoder = decoders.ByteLevel()
    bpe.add_special_tokens(QWEN_SPECIAL_TOKENS)
    bpe.add_tokens(QWEN_ADDED_TOKENS)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token='<|im_end|>',
        pad_token='<|endoftext|>',
        chat_template=QWEN3_VL_CHAT_TEMPLATE,
        model_max_length=4096,
    )


def build_tiny_model(out_dir: str | os.PathLike, arch: str = 'qwen3_vl', seed: int = 0, *, text: dict | None = None,
                     vision: dict | None = None, tie_word_embeddings: bool = True, max_tokens: int = MAX_TOKENS,
                     dtype: torch.dtype = torch.float32) -> Path:
    """Write the tiny ``arch`` checkpoint (a key of TINY_ARCHS) to ``out_dir``; deterministic for a given ``seed``.

    ``text`` / ``vision`` replace entries of the tiny text / vision config, so the same offline tokenizer and
    processor can come with a real-size architecture (``benchmarks/architectures.py``); ``max_tokens`` caps the
    image tokens the processor produces per image.
    """
    import transformers
    from transformers import Qwen2TokenizerFast, Qwen2VLImageProcessor

    spec = TINY_ARCHS[arch]
    final = Path(out_dir)
    out = final.with_name(f'{final.name}.partial-{os.getpid()}')  # renamed into place once whole
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    tokenizer = _build_tokenizer()
    tokenizer.save_pretrained(out)
    # Re-load as the class the real checkpoint names, so tokenizer_config.json matches Qwen's.
    tokenizer = Qwen2TokenizerFast.from_pretrained(out)
    tokenizer.save_pretrained(out)
    ids = {tok: tokenizer.convert_tokens_to_ids(tok) for tok in QWEN_SPECIAL_TOKENS}

    text = dict(TINY_TEXT, vocab_size=QWEN_VOCAB_SIZE, **(text or {}))
    text['rope_parameters'] = {**text['rope_parameters'], **spec.rope_extra}
    vision = dict(spec.vision, **(vision or {}))
    config = getattr(transformers, spec.config_cls)(
        text_config=text,
        vision_config=dict(vision, out_hidden_size=text['hidden_size']),
        image_token_id=ids['<|image_pad|>'],
        video_token_id=ids['<|video_pad|>'],
        vision_start_token_id=ids['<|vision_start|>'],
        vision_end_token_id=ids['<|vision_end|>'],
        tie_word_embeddings=tie_word_embeddings,  # tiny: the 151936-row embedding dominates; share it
    )
    config.text_config.bos_token_id = ids['<|endoftext|>']
    config.text_config.eos_token_id = ids['<|im_end|>']
    config.text_config.pad_token_id = ids['<|endoftext|>']
    torch.manual_seed(seed)
    model = getattr(transformers, spec.model_cls)(config).to(dtype)
    model.generation_config.eos_token_id = [ids['<|im_end|>'], ids['<|endoftext|>']]
    model.generation_config.pad_token_id = ids['<|endoftext|>']
    model.save_pretrained(out, safe_serialization=True)

    processing = dict(
        patch_size=vision['patch_size'],
        temporal_patch_size=vision['temporal_patch_size'],
        merge_size=vision['spatial_merge_size'],
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )
    token_pixels = (vision['patch_size'] * vision['spatial_merge_size'])**2
    min_pixels, max_pixels = MIN_TOKENS * token_pixels, max_tokens * token_pixels
    Qwen2VLImageProcessor(min_pixels=min_pixels, max_pixels=max_pixels, **processing).save_pretrained(out)
    video_size = {'shortest_edge': min_pixels, 'longest_edge': max_pixels * 4}
    getattr(transformers, spec.video_processor_cls)(size=video_size, **processing).save_pretrained(out)
    (out / MARKER).write_text(json.dumps({'arch': arch, 'seed': seed}))  # written last: the folder is whole
    return _move_into_place(out, final)


def _move_into_place(partial: Path, final: Path) -> Path:
    """Rename the finished ``partial`` folder to ``final``, replacing an earlier tiny model there (never a folder of
    anything else)."""
    if final.exists():
        if not (final / MARKER).is_file() and final.is_dir() and any(final.iterdir()):
            shutil.rmtree(partial)
            raise ValueError(f'{final} exists and is not a tiny model written by this toolkit; give another folder')
        shutil.rmtree(final, ignore_errors=True)
    try:
        partial.rename(final)
    except OSError:  # another process put a whole one there first
        if not (final / MARKER).is_file():
            raise
        shutil.rmtree(partial, ignore_errors=True)
    return final


def tiny_model_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole model folder (missing, or a build cut short), or None. A folder the builder
    finished carries ``MARKER``; one written by an older version without it is whole when its files are."""
    if (path / MARKER).is_file():
        return None
    if not path.exists():
        return 'missing'
    for name in ('config.json', 'tokenizer.json', 'tokenizer_config.json', 'preprocessor_config.json'):
        try:
            json.loads((path / name).read_text())
        except (OSError, ValueError):
            return f'{name} is missing or cut short'
    weights = path / 'model.safetensors'
    try:
        with open(weights, 'rb') as f:
            header = int.from_bytes(f.read(8), 'little')
            ends = [t['data_offsets'][1] for k, t in json.loads(f.read(header)).items() if k != '__metadata__']
        if weights.stat().st_size != 8 + header + max(ends, default=0):
            return 'model.safetensors is cut short'
    except (OSError, ValueError, KeyError):
        return 'model.safetensors is missing or unreadable'
    return None


@contextlib.contextmanager
def _build_lock(path: Path) -> Iterator[None]:
    """One process at a time builds ``path`` (every rank of a run calls ``ensure_tiny_model``); the lock goes with its
    process, so a killed builder never blocks the next run."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(f'.{path.name}.lock'), 'w') as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def ensure_tiny_model(model_dir: str | os.PathLike, build: bool, model_type: str | None = None) -> None:
    """Build the tiny model at ``model_dir`` when ``build`` (`custom.build_tiny_model`) is set and it is missing,
    saying so: it is a random test model, never a real checkpoint. However many processes call this at once, one
    builds (into a temporary folder, renamed into place when whole) and the others wait for it; a folder left half
    written by a build that was killed is set aside and built again, never loaded."""
    if not build:
        return
    path = Path(model_dir)
    with _build_lock(path):
        problem = tiny_model_problem(path)
        if problem is None:
            return
        if problem != 'missing':
            aside = path.with_name(f'{path.name}.incomplete-{time.strftime("%Y%m%d-%H%M%S")}')
            path.rename(aside)
            print(f'custom.build_tiny_model: {path} was left half written ({problem}); moved to {aside.name}',
                  file=sys.stderr, flush=True)
        print(f'custom.build_tiny_model: writing the tiny random {model_type or "qwen3_vl"} test model to {model_dir}',
              file=sys.stderr, flush=True)
        build_tiny_model(model_dir, arch=model_type or 'qwen3_vl')
