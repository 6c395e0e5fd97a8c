"""Builders render records into messages; coordinates convert to the model's convention."""
import base64
import io
import json
from pathlib import Path

from PIL import Image

from src.datasets.builders import BuildSettings, build_dense, build_summary, image_input
from src.datasets.builders.coords import Coords

RECORD = {'images': ['a.png'], 'width': 200, 'height': 100, 'dataset': 'roads',
          'objects': [{'desc': '车辆', 'bbox_2d': [0, 50, 100, 100]}, {'desc': 'lane', 'line': [0, 0, 200, 100]},
                      {'desc': 'roof', 'poly': [10, 10, 20, 10, 20, 20]}]}


def test_dense_answer_lists_objects_in_norm1000_with_unicode_kept():
    inputs = build_dense(RECORD, '/data/a.png', BuildSettings())
    user, assistant = inputs['messages']
    assert user['content'][0] == {'type': 'image', 'image': '/data/a.png'}
    assert json.loads(assistant['content']) == [
        {'desc': '车辆', 'bbox_2d': [0, 500, 500, 1000]},
        {'desc': 'lane', 'line': [0, 0, 1000, 1000]},
        {'desc': 'roof', 'poly': [50, 100, 100, 100, 100, 200]},
    ]
    assert '车辆' in assistant['content']


def test_pixel_coordinates_are_rounded_pixels():
    assert Coords('pixel').to_model([0.4, 50.6, 100, 99.5], 200, 100) == [0, 51, 100, 100]


def test_prompts_come_from_config_with_per_dataset_override():
    settings = BuildSettings(prompts={'dense': 'List objects.'}, dataset_prompts={'roads': {'dense': 'Roads?'}})
    assert build_dense(RECORD, 'x', settings)['messages'][0]['content'][1]['text'] == 'Roads?'
    other = {**RECORD, 'dataset': 'other'}
    assert build_dense(other, 'x', settings)['messages'][0]['content'][1]['text'] == 'List objects.'


def test_summary_answer_is_the_summary_text_verbatim():
    record = {**RECORD, 'objects': [], 'summary': '无关图片'}
    inputs = build_summary(record, 'x', BuildSettings(mode='summary'))
    assert inputs['messages'][1]['content'] == '无关图片'


def test_inline_bytes_become_a_png_data_url(tmp_path: Path):
    buffer = io.BytesIO()
    Image.new('RGB', (8, 4), (1, 2, 3)).save(buffer, format='JPEG')
    url = image_input({'bytes': base64.b64encode(buffer.getvalue()).decode()}, tmp_path)
    assert url.startswith('data:image/png;base64,')
    decoded = Image.open(io.BytesIO(base64.b64decode(url.split(',', 1)[1])))
    assert decoded.format == 'PNG' and decoded.size == (8, 4)
    assert image_input('a.png', tmp_path) == str(tmp_path / 'a.png')
