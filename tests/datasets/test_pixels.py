"""uint8 patches from the dataset, expanded by the vision tower's hook: the same tokens, pixels and logits as
ms-swift's own path on the same records (``src/datasets/pixels.py``)."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from src.datasets import BuildSettings, DenseCaptionDataset
from src.datasets.pixels import PatchLayout, Uint8Images, patch_layout, read_uint8_patches, uint8_patches

PROMPT = 'List every object.'


@pytest.fixture
def fresh_template(tiny_model: Path):
    """A template and model of their own: registering them must not change the session's shared template."""
    from swift.model import get_model_processor
    from swift.template import get_template

    model, processor = get_model_processor(str(tiny_model), model_type='qwen3_vl', torch_dtype=torch.float32)
    template = get_template(processor, max_length=512, truncation_strategy='raise')
    template.set_mode('train')
    template.model = model
    return template


def _records(tmp_path: Path) -> tuple[Path, Path]:
    """(project JSONL, ms-swift JSONL) of the same three records on images of different sizes and content."""
    from src.datasets.builders import render_objects
    from src.datasets.builders.coords import Coords

    rng = np.random.default_rng(0)
    ours, theirs = [], []
    for i, (w, h) in enumerate([(96, 64), (64, 64), (128, 96)]):
        path = tmp_path / f'{i}.png'
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(path)
        objects = [{'desc': 'car', 'bbox_2d': [4.0, 5.0, w / 2, h / 2]}]
        ours.append({'images': [str(path)], 'width': w, 'height': h, 'objects': objects})
        answer = render_objects(objects, w, h, Coords())
        theirs.append({'messages': [{'role': 'user', 'content': f'<image>{PROMPT}'},
                                    {'role': 'assistant', 'content': answer}], 'images': [str(path)]})
    for name, rows in (('ours.jsonl', ours), ('theirs.jsonl', theirs)):
        (tmp_path / name).write_text(''.join(json.dumps(r) + '\n' for r in rows))
    return tmp_path / 'ours.jsonl', tmp_path / 'theirs.jsonl'


def test_uint8_patches_match_swift_sft_token_for_token_and_pixel_for_pixel(tmp_path: Path, fresh_template):
    from swift.dataset import load_dataset
    from swift.dataset.utils import LazyLLMDataset

    template = fresh_template
    ours_path, theirs_path = _records(tmp_path)
    assert read_uint8_patches(template, template.model)
    ours = DenseCaptionDataset(ours_path, template, settings=BuildSettings(prompts={'dense': PROMPT, 'summary': ''}))
    rows, _ = load_dataset([str(theirs_path)], num_proc=1, load_from_cache_file=False)
    theirs = LazyLLMDataset(rows, template.encode, strict=True)  # as `swift sft` encodes, float32 rows
    layout = patch_layout(template.processor.image_processor)
    for i in range(3):
        mine, swift = ours[i], theirs[i]
        assert mine['input_ids'] == swift['input_ids'] and mine['labels'] == swift['labels'], i
        assert mine['pixel_values'].dtype == torch.uint8 and swift['pixel_values'].dtype == torch.float32
        assert mine['pixel_values'].shape[1] * 2 == swift['pixel_values'].shape[1]  # one frame instead of two
        assert torch.equal(mine['image_grid_thw'], swift['image_grid_thw'])
        assert torch.equal(layout.expand(mine['pixel_values'], torch.float32), swift['pixel_values']), i

    # The model reads both the same: the hook expands the uint8 rows; float rows pass it unchanged.
    collate = template.data_collator
    batch_u8, batch_f32 = collate([ours[i] for i in range(3)]), collate([theirs[i] for i in range(3)])
    assert batch_u8['pixel_values'].dtype == torch.uint8
    model = template.model.eval()
    with torch.no_grad():
        logits_u8 = model(**batch_u8).logits
        logits_f32 = model(**batch_f32).logits
    assert torch.equal(logits_u8, logits_f32)


def test_a_template_never_registered_keeps_float_rows(template, tmp_path: Path):
    ours_path, _ = _records(tmp_path)
    sample = DenseCaptionDataset(ours_path, template)[0]  # the session template: no model hook, no uint8
    assert sample['pixel_values'].dtype == torch.float32


def test_a_model_without_a_qwen_vl_vision_tower_takes_no_uint8(fresh_template):
    assert read_uint8_patches(fresh_template, torch.nn.Linear(4, 4)) is False
    with uint8_patches(fresh_template):
        assert not isinstance(fresh_template.processor.image_processor, Uint8Images)


def test_calls_other_than_resized_rgb_images_go_to_the_real_processor(fresh_template):
    real = fresh_template.processor.image_processor
    images = Uint8Images(real, patch_layout(real))
    rgb = Image.new('RGB', (64, 64), (10, 20, 30))
    assert images(images=[rgb], return_tensors='pt', do_resize=False)['pixel_values'].dtype == torch.uint8
    for call in ({'images': [rgb.convert('L')], 'return_tensors': 'pt', 'do_resize': False},  # not RGB
                 {'images': [Image.new('RGB', (70, 64))], 'return_tensors': 'pt'}):  # the processor resizes
        assert images(**call)['pixel_values'].dtype == torch.float32, call
    with pytest.raises(RuntimeError, match='invalid for input'):  # not whole patches: the processor's own error
        images(images=[Image.new('RGB', (70, 64))], return_tensors='pt', do_resize=False)
    assert images.merge_size == real.merge_size  # attributes are the real processor's


def test_expand_is_the_processors_float32_arithmetic():
    layout = PatchLayout(2, 1, 2, 1 / 255, (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711))
    rows = torch.arange(24, dtype=torch.uint8).view(2, 12) * 10
    mean = torch.tensor(layout.image_mean) * 255.0
    std = torch.tensor(layout.image_std) * 255.0
    expected = ((rows.view(2, 3, 1, 4).float() - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1)).expand(-1, -1, 2, -1)
    assert torch.equal(layout.expand(rows, torch.float32), expected.reshape(2, 24))
    assert layout.expand(rows, torch.bfloat16).dtype == torch.bfloat16


def test_an_augmented_image_is_not_copied_by_the_template():
    from src.datasets.augmentation.pipeline import AugmentedImage

    image = Image.new('RGB', (8, 8))
    image.__class__ = AugmentedImage
    assert copy.deepcopy({'images': [image]})['images'][0] is image
