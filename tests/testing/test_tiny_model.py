"""The tiny offline Qwen3-VL: real special-token ids, the Qwen3-VL chat template, loadable by transformers."""
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoConfig, AutoProcessor

from src.testing.tiny_model import QWEN_ADDED_TOKENS, QWEN_SPECIAL_TOKENS
from tests.conftest import REPO

# Ids of the real Qwen2.5-VL / Qwen3-VL tokenizer, which ms-swift's templates rely on.
REAL_IDS = {'<|endoftext|>': 151643, '<|im_start|>': 151644, '<|im_end|>': 151645, '<|vision_start|>': 151652,
            '<|vision_end|>': 151653, '<|image_pad|>': 151655, '<|video_pad|>': 151656, '</think>': 151668}


def test_special_tokens_have_the_real_qwen_ids(tiny_model: Path):
    tokenizer = AutoProcessor.from_pretrained(tiny_model).tokenizer
    for token, token_id in REAL_IDS.items():
        assert tokenizer.convert_tokens_to_ids(token) == token_id
    assert len(tokenizer) == 151643 + len(QWEN_SPECIAL_TOKENS) + len(QWEN_ADDED_TOKENS)
    assert tokenizer.decode(tokenizer('无关图片 car [1, 2]').input_ids) == '无关图片 car [1, 2]'


def test_chat_template_renders_images_as_vision_tokens(tiny_model: Path):
    processor = AutoProcessor.from_pretrained(tiny_model)
    messages = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Describe.'}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    assert text == ('<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe.<|im_end|>\n'
                    '<|im_start|>assistant\n')


def test_config_matches_the_token_ids_and_is_small(tiny_model: Path):
    config = AutoConfig.from_pretrained(tiny_model)
    assert config.model_type == 'qwen3_vl'
    assert config.image_token_id == 151655 and config.video_token_id == 151656
    assert len(config.vision_config.deepstack_visual_indexes) == 2
    assert (tiny_model / 'model.safetensors').stat().st_size < 25 * 2**20


@pytest.mark.slow
def test_make_tiny_model_script_writes_a_loadable_checkpoint(tmp_path: Path):
    out = tmp_path / 'tiny'
    subprocess.run([sys.executable, str(REPO / 'scripts' / 'make_tiny_model.py'), str(out)], check=True)
    assert AutoConfig.from_pretrained(out).model_type == 'qwen3_vl'
    assert AutoProcessor.from_pretrained(out).tokenizer.convert_tokens_to_ids('<|image_pad|>') == 151655
