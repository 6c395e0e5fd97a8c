"""The real Qwen3-VL 2B / 4B / 8B architectures (and a tiny one for CPU smokes), for models built with random weights.

The values are transcribed from the ``config.json`` of Qwen/Qwen3-VL-{2B,4B,8B}-Instruct on the Hugging Face hub.
``ARCHS`` holds what differs between the sizes; ``text_config`` / ``vision_config`` add what they share (vocabulary
151936, head_dim 128, rope theta 5e6 with the interleaved M-RoPE sections [24, 20, 20], 16-pixel patches merged 2x2).
Used by ``gpu_throughput.py`` (a model in memory) and ``kd_overhead.py`` (a checkpoint on disk, written by
``src.tiny_model.build_tiny_model`` with the offline tokenizer and processor).
"""
from __future__ import annotations

_VISION_SMALL = dict(depth=24, hidden_size=1024, intermediate_size=4096, num_heads=16,
                     deepstack_visual_indexes=[5, 11, 17])
_VISION_LARGE = dict(depth=27, hidden_size=1152, intermediate_size=4304, num_heads=16,
                     deepstack_visual_indexes=[8, 16, 24])
ARCHS = {
    '2b': dict(text=dict(hidden_size=2048, intermediate_size=6144, num_hidden_layers=28, num_attention_heads=16,
                         num_key_value_heads=8), vision=_VISION_SMALL, tie_word_embeddings=True),
    '4b': dict(text=dict(hidden_size=2560, intermediate_size=9728, num_hidden_layers=36, num_attention_heads=32,
                         num_key_value_heads=8), vision=_VISION_SMALL, tie_word_embeddings=True),
    '8b': dict(text=dict(hidden_size=4096, intermediate_size=12288, num_hidden_layers=36, num_attention_heads=32,
                         num_key_value_heads=8), vision=_VISION_LARGE, tie_word_embeddings=False),
    'tiny': dict(text=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, head_dim=16), vision=dict(depth=2, hidden_size=32,
                                                                             intermediate_size=64, num_heads=2,
                                                                             deepstack_visual_indexes=[0, 1]),
                 tie_word_embeddings=True),
}
VOCAB_SIZE = 151936
IMAGE_PAD, VISION_START, VISION_END = 151655, 151652, 151653


def text_config(arch: str) -> dict:
    """The text config of ``arch``, vocabulary size excluded (the real one, 151936, in every size)."""
    text = dict(head_dim=128, max_position_embeddings=262144, rms_norm_eps=1e-6, hidden_act='silu',
                rope_parameters={'rope_type': 'default', 'rope_theta': 5_000_000.0, 'mrope_section': [24, 20, 20],
                                 'mrope_interleaved': True})
    text.update(ARCHS[arch]['text'])
    if arch == 'tiny':  # the sections sum to head_dim / 2
        text['rope_parameters'] = {**text['rope_parameters'], 'mrope_section': [2, 3, 3]}
    return text


def vision_config(arch: str) -> dict:
    """The vision config of ``arch``, without ``out_hidden_size`` (the text hidden size)."""
    return dict(patch_size=16, spatial_merge_size=2, temporal_patch_size=2, num_position_embeddings=2304,
                hidden_act='gelu_pytorch_tanh', **ARCHS[arch]['vision'])
