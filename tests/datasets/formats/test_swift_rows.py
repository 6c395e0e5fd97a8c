"""ms-swift's own dataset rows (its custom-dataset documentation's shapes) train as they are: the text, images and
grounding `objects` come out token for token as `swift sft` renders them from the same file."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from src.datasets import DenseCaptionDataset, RecordError
from tests.conftest import SMOKE_DATA

# Shapes from ms-swift's "Custom Dataset" documentation (grounding rows: `<ref-object>` / `<bbox>` in the text,
# `objects` with `ref` and pixel `bbox`), with coordinates fitted to the 96x64 smoke image.
ROWS = [
    {'messages': [{'role': 'system', 'content': 'You are a helpful assistant.'},
                  {'role': 'user', 'content': '<image>Describe the image.'},
                  {'role': 'assistant',
                   'content': '<ref-object><bbox> and <ref-object><bbox> are playing on the beach'}],
     'images': ['images/000.png'],
     'objects': {'ref': ['a dog', 'a woman'], 'bbox': [[33.1, 7.6, 85.3, 59.4], [67.6, 6.8, 10.0, 42.7]]}},
    {'messages': [{'role': 'user', 'content': '<image>Find the <ref-object> in the image'},
                  {'role': 'assistant', 'content': '<bbox><bbox>'}],
     'images': ['images/000.png'],
     'objects': {'ref': ['sheep'], 'bbox': [[9.0, 16.0, 13.5, 21.2], [36.0, 48.0, 49.5, 53.2]]}},
    {'messages': [{'role': 'user', 'content': '<image>Where is the <ref-object>?'},
                  {'role': 'assistant', 'content': 'Here: <bbox>'}],
     'images': ['images/000.png'],
     'objects': {'ref': ['light'], 'bbox': [[0.25, 0.25, 0.5, 0.75]], 'bbox_type': 'norm1'}},
    {'messages': [{'role': 'user', 'content': [{'type': 'image', 'image': 'images/000.png'},
                                               {'type': 'text', 'text': 'What is this?'}]},
                  {'role': 'assistant', 'content': 'A test image.'}]},
]


def _write(tmp_path: Path, rows: list[dict]) -> Path:
    shutil.copytree(SMOKE_DATA / 'images', tmp_path / 'images')
    path = tmp_path / 'swift.jsonl'
    path.write_text(''.join(json.dumps(r, ensure_ascii=False) + '\n' for r in rows))
    return path


def test_grounding_rows_encode_exactly_as_swift_sft_loads_them(tmp_path: Path, template, monkeypatch):
    from swift.dataset import load_dataset

    path = _write(tmp_path, ROWS)
    monkeypatch.chdir(tmp_path)  # ms-swift reads relative image paths from the working directory
    ours = DenseCaptionDataset(path, template)
    theirs, _ = load_dataset([str(path)], num_proc=1, load_from_cache_file=False)
    assert len(theirs) == len(ROWS)
    for i in range(len(ROWS)):
        mine, swift = ours[i], template.encode(theirs[i])
        assert mine['input_ids'] == swift['input_ids'] and mine['labels'] == swift['labels'], i
    answer = template.tokenizer.decode([t for t in ours[0]['labels'] if t != -100])
    assert '<ref-object>' not in answer and '<bbox>' not in answer
    assert 'a dog' in answer and 'a woman' in answer  # the refs and the boxes are written into the text
    assert '(345,119),(889,928)' in answer or '[345, 119, 889, 928]' in answer  # pixels -> 0-1000 of 96x64


# ms-swift's query-response rows (the same documentation): `history` as [query, response] pairs, `system`.
QUERY_ROWS = [
    {'system': 'You are a careful annotator.', 'query': '<image>What is in the image?', 'response': 'A test image.',
     'history': [['Hello.', 'Hello! Show me an image.']], 'images': ['images/000.png']},
    {'system': None, 'query': '<image>Describe it in one word.', 'response': 'Colourful.', 'history': [],
     'images': ['images/000.png']},
]


def test_query_response_rows_encode_exactly_as_swift_sft_loads_them(tmp_path: Path, template, monkeypatch):
    from swift.dataset import load_dataset

    path = _write(tmp_path, QUERY_ROWS)
    monkeypatch.chdir(tmp_path)
    ours = DenseCaptionDataset(path, template)
    theirs, _ = load_dataset([str(path)], num_proc=1, load_from_cache_file=False)
    for i in range(len(QUERY_ROWS)):
        mine, swift = ours[i], template.encode(theirs[i])
        assert mine['input_ids'] == swift['input_ids'] and mine['labels'] == swift['labels'], i
    assert 'careful annotator' in template.tokenizer.decode(ours[0]['input_ids'])


def test_a_query_response_row_with_a_broken_history_names_it(tmp_path: Path, template):
    path = _write(tmp_path, [{**QUERY_ROWS[0], 'history': [['only a query']]}])
    with pytest.raises(RecordError, match=rf'{path}:1: `history` must be a list of \[query, response\] pairs'):
        DenseCaptionDataset(path, template)[0]


@pytest.mark.parametrize('objects,message', [
    ({'ref': ['a dog'], 'bbox': [[1, 2, 3, 4]]},
     'the text has 2 <ref-object> placeholder(s) but objects.ref has 1 entries; they must match one to one'),
    ({'ref': ['a dog', 'a woman'], 'bbox': [[1, 2, 3]]}, 'objects.bbox[0]: must be [x1, y1, x2, y2] or a point'),
    ({'ref': ['a', 'b'], 'bbox': [[1, 2, 3, 4], [1, 2, 3, 4]], 'bbox_type': 'norm1000'},
     "objects.bbox_type: 'norm1000' is not one ms-swift reads; use \"real\" (pixels) or \"norm1\""),
    ({'ref': ['a', 'b'], 'box': [[1, 2, 3, 4]]}, "objects: unknown key(s) ['box']"),
    (None, 'the text has 2 <ref-object> placeholder(s) but the record has no `objects`'),
    ([{'desc': 'a', 'bbox_2d': [1, 2, 3, 4]}], '`objects` of a chat record is ms-swift\'s grounding form'),
])
def test_rows_whose_placeholders_and_objects_disagree_are_errors_with_file_and_line(tmp_path: Path, template,
                                                                                     objects, message):
    row = {k: v for k, v in ROWS[0].items() if k != 'objects'}
    if objects is not None:
        row['objects'] = objects
    path = _write(tmp_path, [ROWS[3], row])
    with pytest.raises(RecordError) as exc:
        DenseCaptionDataset(path, template)[1]
    assert str(exc.value).startswith(f'{path}:2: ') and message in str(exc.value)
