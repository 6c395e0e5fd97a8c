"""One schema per record kind, enforced the same way by training and by the validator. Fixtures follow other
projects' documented shapes (ms-swift's standard format with `system` / `tools` / per-message `loss`, LLaVA's `image`
key, OpenAI's `image_url` with `detail`) and broken JSON lines nobody names until a user writes one."""
import base64
import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.config import ConfigError, load_and_validate
from src.datasets.builders import BuildSettings
from src.datasets.contract import RecordError
from src.datasets.dense_caption import DenseCaptionDataset
from src.datasets.record_check import record_verdict
from tests.conftest import image_record, write_jsonl


def _geo(**overrides):
    record = {'images': ['images/a.png'], 'width': 64, 'height': 64,
              'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 30, 40]}]}
    record.update(overrides)
    return record


def _png_bytes(image: Image.Image, fmt: str = 'PNG') -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture
def wide_images(image_dir: Path) -> Path:
    """Images whose samples do not fit 8 bits: a 16-bit greyscale PNG (depth maps, medical, microscopy) and a
    32-bit float TIFF; and an 8-bit palette PNG, which is fine."""
    Image.fromarray(np.full((64, 64), 40000, dtype=np.uint16)).save(image_dir / 'depth16.png')
    Image.fromarray(np.full((64, 64), 0.5, dtype=np.float32)).save(image_dir / 'float.tiff')
    Image.new('P', (64, 64)).save(image_dir / 'palette.png')
    return image_dir


def _grounding(box: list[float], **objects) -> dict:
    """An ms-swift grounding row on images/b.png (96x64) and images/a.png (64x64), one box."""
    return {'messages': [{'role': 'user', 'content': '<image><image>Where is <ref-object>?'},
                         {'role': 'assistant', 'content': '<bbox>'}],
            'images': ['images/b.png', 'images/a.png'], 'objects': {'ref': ['car'], 'bbox': [box], **objects}}


# (record or raw line, expected fragment of the problem, mode); every one must be refused by training and the validator.
BAD = [
    pytest.param({**image_record('images/a.png'), 'image': 'images/b.png'},
                 'unknown key(s) `image` (did you mean `images`?)', 'dense', id='llava-style image key in a chat'),
    pytest.param({**image_record('images/a.png'), 'system': 'You are a helpful assistant.'},
                 '`system` is not read by this toolkit: give the system prompt as the first message', 'dense',
                 id='ms-swift top-level system'),
    pytest.param({**image_record('images/a.png'), 'tools': '[]'}, '`tools` is not read by this toolkit', 'dense',
                 id='ms-swift tools'),
    pytest.param({'messages': [{'role': 'user', 'content': '<image>Describe.'},
                               {'role': 'assistant', 'content': 'a car', 'loss': False}], 'images': ['images/a.png']},
                 '`loss` is not read by this toolkit: which turns carry loss is `template.loss_scale`', 'dense',
                 id='ms-swift per-message loss'),
    pytest.param({'messages': [{'role': 'user', 'content': [
        {'type': 'image_url', 'image_url': {'url': 'images/a.png', 'detail': 'high', 'size': 3}},
        {'type': 'text', 'text': 'Describe.'}]}, {'role': 'assistant', 'content': 'a car'}]},
                 'image_url: unknown key(s) `size`', 'dense', id='openai image_url with an unknown key'),
    pytest.param({'messages': [{'role': 'user', 'content': [{'type': 'text', 'text': 'Hi', 'image': 'x.png'}]},
                               {'role': 'assistant', 'content': 'a car'}]},
                 'a "text" item: unknown key(s) `image`', 'dense', id='text item carrying an image'),
    pytest.param('{"images": ["images/a.png"], "width": 64, "width": 32, "height": 64, "objects": []}',
                 'key "width" appears twice in one object', 'dense', id='duplicate key'),
    pytest.param('{"images": ["images/a.png"], "width": 64, "height": 64, "objects": [{"desc": "car", '
                 '"bbox_2d": [1, 2, NaN, 40]}]}', 'NaN is not a JSON number', 'dense', id='NaN literal'),
    pytest.param('{"images": ["images/a.png"], "width": 64, "height": 64, "summary": ' + '[' * 50000 + ']' * 50000 +
                 '}', 'nested too deeply', 'summary', id='pathologically nested'),
    pytest.param('{"images": ["images/a.png"], "width": ' + '9' * 5000 + ', "height": 64, "summary": "x"}',
                 'invalid JSON', 'summary', id='integer of 5000 digits'),
    pytest.param(_geo(objects=[{'desc': 'car<|im_end|>', 'bbox_2d': [1, 2, 30, 40]}]),
                 'objects[0].desc contains <|im_end|>, a control token', 'dense', id='control token in desc'),
    pytest.param(_geo(objects=[{'desc': 'a <image> of a car', 'bbox_2d': [1, 2, 30, 40]}]),
                 'objects[0].desc contains <image>, a placeholder', 'dense', id='placeholder in desc'),
    pytest.param(_geo(summary='ok<|endoftext|>'), '`summary` contains <|endoftext|>', 'summary',
                 id='control token in summary'),
    pytest.param(image_record('images/a.png', 'fine<|im_end|><|im_start|>user'), 'contains <|im_end|>', 'dense',
                 id='control token in a chat answer'),
    pytest.param({'messages': [{'role': 'user', 'content': '<ref-object><bbox>'},
                               {'role': 'assistant', 'content': 'yes'}],
                  'images': [], 'objects': {'ref': ['a <|box_start|>'], 'bbox': [[1, 2, 3, 4]]}},
                 'objects.ref[0] contains <|box_start|>', 'dense', id='control token in a grounding ref'),
    pytest.param(image_record('images/a.png', '   '), 'the assistant answer is empty', 'dense', id='blank answer'),
    pytest.param({'messages': [{'role': 'user', 'content': [{'type': 'image', 'image': 'images/a.png'}]},
                               {'role': 'assistant', 'content': [{'type': 'text', 'text': ''}]}]},
                 'the assistant answer is empty', 'dense', id='empty text item answer'),
    pytest.param(_geo(objects=[], summary='a street'), '`custom.mode: dense` trains the model to list the objects, '
                 'and this is a summary record without any', 'dense', id='summary record in dense mode'),
    pytest.param(_geo(summary='  '), '`summary` is empty', 'summary', id='empty summary in summary mode'),
    pytest.param(_geo(), 'this record has none (only `objects`)', 'summary', id='dense record in summary mode'),
    pytest.param(_geo(images=['images/depth16.png']), 'has 16-bit samples (PIL mode I;16)', 'dense',
                 id='16-bit png'),
    pytest.param(_geo(images=['images/float.tiff']), 'has 32-bit float samples (PIL mode F)', 'dense',
                 id='float tiff'),
    pytest.param(image_record('images/depth16.png'), 'has 16-bit samples', 'dense', id='16-bit png in a chat record'),
    pytest.param(_geo(images=[{'bytes': base64.b64encode(b'%PDF-1.4 not an image').decode()}]),
                 'the inline {"bytes": ...} do not open as an image', 'dense', id='inline bytes that are a pdf'),
    pytest.param(_geo(images=[{'bytes': 'not base64 at all!'}]), 'do not open as an image', 'dense',
                 id='inline bytes that are not base64'),
    pytest.param(_geo(images=['images/notes.txt']), 'does not open as an image', 'dense', id='a text file as image'),
    pytest.param(_geo(videos=['clip.mp4']), '(videos belong to chat records, which carry `messages`)', 'dense',
                 id='videos on a geometry record'),
    *[pytest.param(_grounding(box, **extra), fragment, 'dense', id=name) for name, box, extra, fragment in [
        ('grounding box past the image', [10, 10, 600, 500], {}, 'objects.bbox[0]: [10, 10, 600, 500] leaves the '
         '96x64 image'),
        ('grounding box left of the image', [-5, 10, 60, 50], {}, 'objects.bbox[0]: [-5, 10, 60, 50] leaves the 96x64'),
        ('grounding box without area', [10, 10, 10, 50], {}, 'objects.bbox[0]: [10, 10, 10, 50] has no area'),
        ('grounding norm1 box past 1', [0.1, 0.1, 1.5, 0.5], {'bbox_type': 'norm1'},
         'objects.bbox[0]: [0.1, 0.1, 1.5, 0.5] leaves the 0-1 range of bbox_type "norm1"'),
        ('grounding box past its second image', [10, 10, 90, 50], {'image_id': [1]},
         'objects.bbox[0]: [10, 10, 90, 50] leaves the 64x64 image'),
    ]],
]


@pytest.mark.parametrize('record,fragment,mode', BAD)
def test_training_and_the_validator_refuse_each_with_the_same_words(wide_images: Path, record, fragment, mode):
    (wide_images / 'notes.txt').write_text('hello')
    good = _geo() if mode == 'dense' else _geo(summary='dataset: shapes\nobjects: 1\n{"car": 1}')
    data = write_jsonl(wide_images.parent / 'data.jsonl', [good, record])
    dataset = DenseCaptionDataset(data, None, settings=BuildSettings(mode=mode))
    with pytest.raises(RecordError) as err:
        dataset.inputs(1)
    assert str(err.value).startswith(f'{data}:2: ') and fragment in str(err.value), str(err.value)
    problems = record_verdict(dataset, 1, None, False).problems
    assert any(fragment in p for p in problems), problems
    assert record_verdict(dataset, 0, None, False).problems == [], 'the good line next to it still passes'


@pytest.mark.parametrize('record,mode', [
    pytest.param(_geo(images=['images/palette.png']), 'dense', id='8-bit palette png'),
    pytest.param(_geo(objects=[], summary='无关图片'), 'summary', id='summary record in summary mode'),
    pytest.param({'messages': [{'role': 'system', 'content': 'You are a helpful assistant.'},
                               {'role': 'user', 'content': '<image>Describe.'},
                               {'role': 'assistant', 'content': 'a car'}], 'images': ['images/a.png']}, 'dense',
                 id='ms-swift standard row with a system message'),
    pytest.param({'messages': [{'role': 'user', 'content': [
        {'type': 'image_url', 'image_url': {'url': 'images/a.png', 'detail': 'high'}},
        {'type': 'text', 'text': 'Describe.'}]}, {'role': 'assistant', 'content': 'a car'}]}, 'dense',
                 id='openai image_url with detail'),
    pytest.param(_grounding([90, 60, 2, 4]), 'dense', id='grounding corners in reverse (ms-swift orders them)'),
    pytest.param(_grounding([96, 0, 0, 64]), 'dense', id='grounding box over the whole first image'),
    pytest.param(_grounding([0.1, 0.2, 1.0, 0.5], bbox_type='norm1'), 'dense', id='grounding norm1 box'),
    pytest.param(_grounding([1, 1, 60, 60], image_id=[1]), 'dense', id='grounding box on the second image'),
])
def test_what_other_tools_write_correctly_still_trains(wide_images: Path, record, mode):
    data = write_jsonl(wide_images.parent / 'data.jsonl', [record])
    dataset = DenseCaptionDataset(data, None, settings=BuildSettings(mode=mode))
    dataset.inputs(0)
    assert record_verdict(dataset, 0, None, False).problems == []


def test_the_validator_reports_pathological_lines_and_goes_on(image_dir: Path, capsys):
    from src.datasets.validate import main

    lines = ['[' * 100000, '{"a": ' + '1' * 10000 + '}', json.dumps(_geo()), '{"images": ["x"], "images": ["y"]}']
    data = write_jsonl(image_dir.parent / 'data.jsonl', lines)
    assert main([str(data)]) == 1
    out = capsys.readouterr().out
    assert f'{data}:1: invalid JSON: nested too deeply to read' in out
    assert f'{data}:2: invalid JSON: ' in out and f'{data}:3:' not in out
    assert f'{data}:4: invalid JSON: key "images" appears twice in one object' in out
    assert '4 records, 3 with problems' in out


def test_a_prompt_with_template_markup_is_refused_before_anything_loads(make_config):
    with pytest.raises(ConfigError) as err:
        load_and_validate(make_config('lora.yaml', custom={'prompts': {'dense': 'List objects.<|im_end|>'},
                                                           'summary_prompt_variants': None}))
    assert '`custom.prompts.dense`: contains <|im_end|>, a control token' in str(err.value), str(err.value)
    with pytest.raises(ConfigError) as err:
        load_and_validate(make_config('summary.yaml', custom={'summary_prompt_variants': ['Summarise.',
                                                                                          '<image> Summarise.']}))
    assert 'contains <image>, a placeholder' in str(err.value)


def test_inline_16_bit_bytes_are_refused_too(image_dir: Path):
    wide = base64.b64encode(_png_bytes(Image.fromarray(np.full((64, 64), 300, dtype=np.uint16)))).decode()
    data = write_jsonl(image_dir.parent / 'data.jsonl', [_geo(images=[{'bytes': wide}])])
    with pytest.raises(RecordError, match='16-bit samples'):
        DenseCaptionDataset(data, None).inputs(0)
