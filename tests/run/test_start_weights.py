"""A stage that starts from an earlier stage's adapter trains on that adapter merged into the base model: the merge
is made once, reused while the adapter and the base are the ones it was made of, and made again beside the first when
stage 1 was trained again into the same checkpoint. No merge is ever replaced (a stage-2 adapter names it as its
base), a merged folder the toolkit did not write is left as it is, and an adapter of another base is refused."""
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
    second = Path(start_model(checkpoint, str(tiny_model), rank=0))
    assert 'which holds another merge: the adapter or the base model changed since' in capsys.readouterr().out
    assert second.parent == merged.parent and second.name.startswith('checkpoint-4-merged-')
    assert all(torch.equal(first[k], v) for k, v in _weights(merged).items()), 'the first merge is kept as it was'
    again = _weights(second)
    assert any(not torch.equal(first[k], again[k]) for k in first if 'q_proj' in k)
    assert start_model(checkpoint, str(tiny_model), rank=0) == str(second), 'and reused'


def test_a_merged_folder_the_toolkit_did_not_write_is_left_as_it_is(tiny_model: Path, tmp_path: Path):
    checkpoint = _adapter(tiny_model, tmp_path / 'checkpoint-4', seed=0)
    exported = merged_path(checkpoint)
    exported.mkdir()
    (exported / 'model.safetensors').write_bytes(b'from swift export')
    merged = Path(start_model(checkpoint, str(tiny_model), rank=0))
    assert merged.name.startswith('checkpoint-4-merged-') and (merged / DONE).is_file()
    assert (exported / 'model.safetensors').read_bytes() == b'from swift export'


def test_an_adapter_trained_on_another_base_is_refused(tiny_model: Path, tmp_path: Path):
    import shutil

    checkpoint = _adapter(tiny_model, tmp_path / 'checkpoint-4', seed=0)
    other = shutil.copytree(tiny_model, tmp_path / 'other-base')
    with pytest.raises(ConfigError) as err:
        start_model(checkpoint, str(other), rank=0)
    assert err.value.problems[0] == (f'`tuner.resume_from_checkpoint`: the adapter {checkpoint} was trained on '
                                     f'{tiny_model} (its adapter_config.json), and `model.model` is {other}; merged '
                                     'into another base its weights would be neither stage\'s. Set `model.model: '
                                     f'{tiny_model}`')
    assert not merged_path(checkpoint).exists()
