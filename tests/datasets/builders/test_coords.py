"""Coordinates in the convention each model family was trained on, exactly as ms-swift's own grounding path writes them,
and read back with the same resize so that a perfect answer scores a perfect F1."""
import json
import re
from pathlib import Path

import pytest
from PIL import Image

from src.config import load_and_validate
from src.datasets.builders import BUILDERS, BuildSettings, coords_of
from src.datasets.builders.coords import Coords, model_image_size
from src.eval.metrics import score_dense
from src.eval.parse import parse_dense, record_objects
from src.testing.tiny_model import build_tiny_model
from tests.conftest import SMOKE_CONFIGS, write_yaml

MAX_PIXELS = 131072
BOX = [100, 100, 300, 300]


@pytest.fixture(scope='module')
def tiny_qwen25(tmp_path_factory) -> Path:
    return build_tiny_model(tmp_path_factory.mktemp('models') / 'tiny-qwen2.5-vl', arch='qwen2_5_vl')


@pytest.fixture
def wide_image(tmp_path: Path) -> Path:
    path = tmp_path / 'wide.png'
    Image.new('RGB', (1000, 500), (90, 120, 150)).save(path)
    return path


def test_the_worked_example_of_each_convention():
    assert model_image_size(1000, 500, MAX_PIXELS) == (504, 252)
    assert Coords('model_pixel', MAX_PIXELS).to_model(BOX, 1000, 500) == [50, 50, 151, 151]
    assert Coords('norm1000', MAX_PIXELS).to_model(BOX, 1000, 500) == [100, 200, 300, 600]
    assert Coords('pixel').to_model(BOX, 1000, 500) == BOX
    assert model_image_size(640, 480, None) == (644, 476), 'no max_pixels: only the rounding to multiples of 28'


def test_the_convention_follows_the_model_and_an_override_is_a_warning(tmp_path: Path):
    qwen3 = load_and_validate(SMOKE_CONFIGS / 'lora.yaml')
    qwen25 = load_and_validate(SMOKE_CONFIGS / 'qwen2_5_vl_lora.yaml')
    assert (qwen3.coord_format, qwen25.coord_format) == ('norm1000', 'model_pixel')
    assert qwen3.warnings == qwen25.warnings == []
    config = write_yaml(tmp_path / 'x.yaml', {'extends': str(SMOKE_CONFIGS / 'qwen2_5_vl_lora.yaml'),
                                              'custom': {'coord_format': 'norm1000'}})
    cfg = load_and_validate(config)
    assert cfg.coord_format == 'norm1000', 'an explicit setting is kept'
    assert cfg.warnings == [f"{config}: `custom.coord_format`: 'norm1000' is not the convention the base model was "
                            "trained on ('model_pixel'); remove the key to follow the model"]


def _swift_numbers(model_dir: Path, model_type: str, image: Path) -> list[int]:
    """The box ms-swift's own template writes for an `objects` grounding row (`<ref-object>` / `<bbox>`)."""
    from swift.model import get_processor
    from swift.template import get_template

    processor = get_processor(str(model_dir), model_type=model_type)
    template = get_template(processor, template_type=model_type, max_pixels=MAX_PIXELS)
    template.set_mode('train')
    row = {'messages': [{'role': 'user', 'content': '<image>Where is the <ref-object>?'},
                        {'role': 'assistant', 'content': '<bbox>'}],
           'images': [str(image)], 'objects': {'ref': ['car'], 'bbox': [list(BOX)]}}
    labels = [t for t in template.encode(row)['labels'] if t != -100]
    return [int(n) for n in re.findall(r'\d+', template.tokenizer.decode(labels))]


@pytest.mark.parametrize('family', ['qwen3_vl', 'qwen2_5_vl'])
def test_the_project_writes_the_same_numbers_as_ms_swifts_grounding_path(family, tiny_model, tiny_qwen25, wide_image,
                                                                       tmp_path: Path):
    model_dir = tiny_model if family == 'qwen3_vl' else tiny_qwen25
    config = write_yaml(tmp_path / 'run.yaml', {
        'extends': str(SMOKE_CONFIGS / ('lora.yaml' if family == 'qwen3_vl' else 'qwen2_5_vl_lora.yaml')),
        'model': {'model': str(model_dir)}, 'template': {'max_pixels': MAX_PIXELS}})
    settings = BuildSettings.from_config(load_and_validate(config))
    record = {'images': [str(wide_image)], 'width': 1000, 'height': 500,
              'objects': [{'desc': 'car', 'bbox_2d': list(BOX)}]}
    answer = BUILDERS['dense'](record, str(wide_image), settings)['messages'][-1]['content']
    ours = json.loads(answer)[0]['bbox_2d']
    assert ours == _swift_numbers(model_dir, family, wide_image)
    assert ours == ([100, 200, 300, 600] if family == 'qwen3_vl' else [50, 50, 151, 151])


def test_a_perfect_qwen25_answer_on_a_resized_image_scores_f1_one(tmp_path: Path):
    config = write_yaml(tmp_path / 'run.yaml', {'extends': str(SMOKE_CONFIGS / 'qwen2_5_vl_lora.yaml'),
                                                'template': {'max_pixels': MAX_PIXELS}})
    coords = coords_of(load_and_validate(config))
    record = {'width': 1000, 'height': 500, 'objects': [
        {'desc': 'car', 'bbox_2d': [100, 100, 300, 300]}, {'desc': 'dog', 'bbox_2d': [611, 37, 988, 463]},
        {'desc': 'lane', 'line': [0, 480, 1000, 470]}, {'desc': 'roof', 'poly': [700, 20, 900, 20, 800, 120]}]}
    perfect = json.dumps([{'desc': o['desc'], k: coords.to_model(o[k], 1000, 500)} for o in record['objects']
                          for k in ('bbox_2d', 'poly', 'line') if k in o])
    score = score_dense(parse_dense(perfect, 1000, 500, coords), record_objects(record), 1000, 500)
    assert score.score == 1.0 and score.total.metrics()['f1@[.5:.95]'] > 0.9
    # Read as norm1000 (the convention of the other family), the same answer scores nothing like it.
    wrong = score_dense(parse_dense(perfect, 1000, 500, Coords('norm1000')), record_objects(record), 1000, 500)
    assert wrong.score < 0.5
