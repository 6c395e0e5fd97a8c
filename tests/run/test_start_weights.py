"""A stage that starts from an earlier stage's adapter trains on that adapter merged into the base model: the merge
is made once, reused while the adapter and the base are the ones it was made of, made again when stage 1 was trained
again into the same checkpoint, and a merged folder the toolkit did not write is refused, not replaced."""
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from src.config import ConfigError
from src.run.start_weights import DONE, merged_path, start_model


def _adapter(tiny_model: Path, folder: Path, seed: int) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.manual_seed(seed)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model, dtype=torch.float32)
    peft = get_peft_model(model, LoraConfig(r=2, target_modules=['q_proj'], init_lora_weights=False))
    peft.save_pretrained(folder)
    return folder


def _weights(folder: Path) -> dict[str, torch.Tensor]:
    return {k: v for f in sorted(folder.glob('*.safetensors')) for k, v in load_file(f).items()}


def test_the_merge_follows_the_adapter(tiny_model: Path, tmp_path: Path, capsys):
    checkpoint = _adapter(tiny_model, tmp_path / 'stage1' / 'checkpoint-4', seed=0)
    merged = Path(start_model(checkpoint, str(tiny_model), rank=0))
    assert merged == merged_path(checkpoint) and (merged / DONE).is_file()
    first = _weights(merged)
    assert 'merging the adapter' in capsys.readouterr().out
    assert start_model(checkpoint, str(tiny_model), rank=0) == str(merged)
    assert 'merging' not in capsys.readouterr().out, 'the same adapter and base: the merge is reused'
    _adapter(tiny_model, checkpoint, seed=1)  # stage 1 trained again into the same checkpoint
    start_model(checkpoint, str(tiny_model), rank=0)
    assert 'again: the adapter or the base model changed since the last merge' in capsys.readouterr().out
    again = _weights(merged)
    assert any(not torch.equal(first[k], again[k]) for k in first if 'q_proj' in k)


def test_a_merged_folder_the_toolkit_did_not_write_is_refused(tiny_model: Path, tmp_path: Path):
    checkpoint = tmp_path / 'checkpoint-4'
    checkpoint.mkdir()
    (checkpoint / 'adapter_config.json').write_text('{}')
    exported = merged_path(checkpoint)
    exported.mkdir()
    (exported / 'model.safetensors').write_bytes(b'from swift export')
    with pytest.raises(ConfigError) as err:
        start_model(checkpoint, str(tiny_model), rank=0)
    assert err.value.problems[0].startswith(f'`tuner.resume_from_checkpoint`: {exported} exists and is not a merge of '
                                            'this toolkit (`swift export --merge_lora`?)')
    assert (exported / 'model.safetensors').read_bytes() == b'from swift export'
