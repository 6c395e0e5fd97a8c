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


CALL_ENSURE = '''
import sys
from src.testing.tiny_model import ensure_tiny_model
ensure_tiny_model(sys.argv[1], True)
'''


@pytest.mark.slow
def test_many_processes_at_once_build_the_model_once_and_all_load_it(tmp_path: Path):
    """What every rank of a torchrun launch does on a fresh checkout."""
    from transformers import AutoModelForImageTextToText

    target = tmp_path / '.cache' / 'tiny-qwen3-vl'
    runs = [subprocess.Popen([sys.executable, '-c', CALL_ENSURE, str(target)], cwd=REPO, stderr=subprocess.PIPE,
                             text=True) for _ in range(4)]
    messages = [run.communicate(timeout=600)[1] for run in runs]
    assert [run.returncode for run in runs] == [0, 0, 0, 0], messages
    assert sum('writing the tiny random' in m for m in messages) == 1, messages
    assert sorted(p.name for p in target.parent.iterdir()) == ['.tiny-qwen3-vl.lock', 'tiny-qwen3-vl']
    AutoModelForImageTextToText.from_pretrained(target)


@pytest.mark.parametrize('cut', ['config.json', 'model.safetensors'])
def test_a_half_written_model_is_set_aside_and_rebuilt_not_loaded(tiny_model: Path, tmp_path: Path, capsys, cut):
    import shutil

    from src.testing.tiny_model import MARKER, ensure_tiny_model, tiny_model_problem

    target = tmp_path / 'tiny'
    shutil.copytree(tiny_model, target)
    (target / MARKER).unlink()  # a build that died before finishing never wrote its marker
    assert tiny_model_problem(target) is None, 'a whole folder without the marker (an older build) is used as is'
    data = (target / cut).read_bytes()
    (target / cut).write_bytes(data[:len(data) // 2])
    assert tiny_model_problem(target) == f'{cut} is {"missing or cut short" if cut == "config.json" else "cut short"}'
    ensure_tiny_model(target, True)
    assert tiny_model_problem(target) is None and (target / MARKER).is_file()
    [aside] = [p for p in tmp_path.iterdir() if p.name.startswith('tiny.incomplete-')]
    assert (aside / cut).stat().st_size == len(data) // 2, 'set aside, not deleted'
    assert f'{target} was left half written ({cut} is' in capsys.readouterr().err


def test_the_builder_never_replaces_a_folder_it_did_not_build(tmp_path: Path):
    from src.testing.tiny_model import build_tiny_model

    (tmp_path / 'mine').mkdir()
    (tmp_path / 'mine' / 'notes.txt').write_text('keep')
    with pytest.raises(ValueError, match='exists and is not a tiny model written by this toolkit'):
        build_tiny_model(tmp_path / 'mine')
    assert (tmp_path / 'mine' / 'notes.txt').read_text() == 'keep'
    assert [p.name for p in tmp_path.iterdir()] == ['mine'], 'no partial folder left behind'
