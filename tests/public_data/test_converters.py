"""Each converter on a small input it builds: exact output records, bad records skipped with their reason."""
import base64
import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from public_data import coco, csv_qa, llava, openai_messages, refcoco
from public_data.common import run
from tests.conftest import REPO, write_jsonl


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _coco(tmp_path: Path, lvis: bool = False) -> Path:
    image_key = 'coco_url' if lvis else 'file_name'
    image_value = (lambda name: f'http://images.cocodataset.org/val2017/{name}') if lvis else (lambda name: name)
    data = {
        'info': {}, 'licenses': [],
        'images': [{'id': 1, image_key: image_value('a.png'), 'width': 64, 'height': 64},
                   {'id': 2, image_key: image_value('b.png'), 'width': 96, 'height': 64},
                   {'id': 3, image_key: image_value('gone.png'), 'width': 10, 'height': 10}],
        'annotations': [
            {'id': 10, 'image_id': 1, 'category_id': 7, 'bbox': [4, 6, 20, 10], 'iscrowd': 0,
             'segmentation': [[4, 6, 24, 6, 24, 16]]},
            {'id': 11, 'image_id': 1, 'category_id': 8, 'bbox': [50, 50, 30, 30], 'iscrowd': 0,
             'segmentation': [[50, 50, 70, 50, 70, 70, 50, 70], [52, 52, 60, 52, 60, 60]]},
            {'id': 12, 'image_id': 2, 'category_id': 7, 'bbox': [0, 0, 0, 5], 'iscrowd': 0, 'segmentation': []},
            {'id': 13, 'image_id': 2, 'category_id': 7, 'bbox': [1, 1, 5, 5], 'iscrowd': 1,
             'segmentation': {'counts': 'abc', 'size': [64, 96]}},
            {'id': 14, 'image_id': 3, 'category_id': 7, 'bbox': [1, 1, 5, 5], 'iscrowd': 0, 'segmentation': []},
        ],
        'categories': [{'id': 7, 'name': 'car'}, {'id': 8, 'name': '行人'}],
    }
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps(data))
    return path


def test_coco_boxes(image_dir: Path, tmp_path: Path, capsys):
    out = tmp_path / 'out' / 'coco.jsonl'
    report = coco.convert_file(_coco(tmp_path), image_dir, out)
    assert _read(out) == [{'images': ['../images/a.png'], 'width': 64, 'height': 64, 'dataset': 'coco',
                           'objects': [{'desc': 'car', 'bbox_2d': [4.0, 6.0, 24.0, 16.0]},
                                       {'desc': '行人', 'bbox_2d': [50.0, 50.0, 64.0, 64.0]}]}]
    assert report.written == 1
    assert '"bbox_2d": [4, 6, 24, 16]' in out.read_text(), 'whole pixels are written as integers'
    lost = 'image would lose 2 object(s) (degenerate box [0.0, 0.0, 0.0, 5.0]); --keep-partial keeps it'
    assert report.skipped == {'degenerate box [0.0, 0.0, 0.0, 5.0]': 1, 'crowd annotation (RLE mask)': 1, lost: 1,
                              'image file not found': 1}
    assert report.notes == {'box clamped at the image edge': 1}
    err = capsys.readouterr().err
    assert 'skipped annotation 13: crowd annotation' in err and '1  box clamped at the image edge (kept)' in err


def test_coco_keep_partial_keeps_the_objects_that_converted(image_dir: Path, tmp_path: Path):
    data = json.loads(_coco(tmp_path).read_text())
    data['annotations'].append({'id': 15, 'image_id': 2, 'category_id': 7, 'bbox': [10, 10, 20, 20], 'iscrowd': 0})
    source = tmp_path / 'partial.json'
    source.write_text(json.dumps(data))
    out = tmp_path / 'kept.jsonl'
    coco.convert_file(source, image_dir, out, keep_partial=True)
    assert [r['objects'] for r in _read(out)][1] == [{'desc': 'car', 'bbox_2d': [10.0, 10.0, 30.0, 30.0]}]
    coco.convert_file(source, image_dir, out)  # by default the image with a lost crowd object is dropped
    assert len(_read(out)) == 1


def test_coco_duplicate_image_ids_are_an_error_and_nothing_is_written(image_dir: Path, tmp_path: Path, capsys):
    data = json.loads(_coco(tmp_path).read_text())
    data['images'].append({'id': 1, 'file_name': 'b.png', 'width': 96, 'height': 64})
    source = tmp_path / 'dup.json'
    source.write_text(json.dumps(data))
    out = tmp_path / 'dup.jsonl'
    assert run(coco.main, ['--annotations', str(source), '--images', str(image_dir), '--out', str(out)]) == 1
    assert 'image id 1 appears twice in `images`' in capsys.readouterr().err and not out.exists()


def test_coco_multi_part_polygons_stay_one_object_with_the_same_mask(image_dir: Path, tmp_path: Path):
    from src.eval.geometry import polygon_mask

    out = tmp_path / 'poly.jsonl'
    coco.convert_file(_coco(tmp_path), image_dir, out, geometry='poly')
    objects = _read(out)[0]['objects']
    assert [o['desc'] for o in objects] == ['car', '行人']
    assert objects[0]['poly'] == [4.0, 6.0, 24.0, 6.0, 24.0, 16.0]
    square = [50.0, 50.0, 64.0, 50.0, 64.0, 64.0, 50.0, 64.0]  # clamped at the 64 px edge
    triangle = [52.0, 52.0, 60.0, 52.0, 60.0, 60.0]
    joined = polygon_mask(objects[1]['poly'], 64, 64)
    parts = polygon_mask(square, 64, 64) | polygon_mask(triangle, 64, 64)
    assert objects[1]['poly'][:8] == square and (joined == parts).mean() > 0.99


def test_coco_as_other_tools_write_it_sizes_as_floats_and_polygon_parts_detectron2_drops(image_dir: Path,
                                                                                         tmp_path: Path, capsys):
    """Sizes written as floats (`64.0`) are whole pixels; an image entry without a size is skipped with the reason,
    not a KeyError; polygon parts of under 3 points or odd length are dropped and counted, as detectron2 drops them;
    a part holding something else than numbers loses its object (so its image), named."""
    data = {'images': [{'id': 1, 'file_name': 'a.png', 'width': 64.0, 'height': 64.0},
                       {'id': 2, 'file_name': 'b.png'},
                       {'id': 3, 'file_name': 'a.png', 'width': 64, 'height': 64}],
            'annotations': [{'id': 10, 'image_id': 1, 'category_id': 7, 'bbox': [4, 6, 20, 10], 'iscrowd': 0,
                             'segmentation': [[10, 10, 30, 10, 30, 30, 10, 30], [50, 50, 60, 50],
                                              [40, 40, 50, 40, 50, 50, 40]]},
                            {'id': 11, 'image_id': 2, 'category_id': 7, 'bbox': [1, 1, 5, 5], 'iscrowd': 0,
                             'segmentation': [[1, 1, 5, 1, 5, 5]]},
                            {'id': 12, 'image_id': 3, 'category_id': 7, 'bbox': [1, 1, 5, 5], 'iscrowd': 0,
                             'segmentation': [[1, 1, '30', 1, 30, 30]]}],
            'categories': [{'id': 7, 'name': 'car'}]}
    (tmp_path / 'inst.json').write_text(json.dumps(data))
    out = tmp_path / 'poly.jsonl'
    report = coco.convert_file(tmp_path / 'inst.json', image_dir, out, geometry='poly')
    [record] = _read(out)
    assert (record['width'], record['height']) == (64, 64) and type(record['width']) is int
    assert record['objects'] == [{'desc': 'car', 'poly': [10.0, 10.0, 30.0, 10.0, 30.0, 30.0, 10.0, 30.0]}]
    assert report.notes['polygon part with under 3 points or no area dropped (as detectron2 drops it)'] == 2
    err = capsys.readouterr().err
    assert "skipped image 2: image entry without a size in whole pixels (`width`, `height`: None x None)" in err
    assert "skipped annotation 12: segmentation part 0 has a value that is not a finite number" in err


def test_lvis_names_images_by_coco_url(image_dir: Path, tmp_path: Path):
    out = tmp_path / 'lvis.jsonl'
    coco.main(['--annotations', str(_coco(tmp_path, lvis=True)), '--images', str(image_dir), '--out', str(out),
               '--dataset', 'lvis'])
    [record] = _read(out)
    assert record['images'] == ['images/a.png'] and record['dataset'] == 'lvis'


def test_llava(image_dir: Path, tmp_path: Path):
    items = [
        {'id': 'a', 'image': 'a.png', 'conversations': [{'from': 'human', 'value': '<image>\nWhat is it?'},
                                                        {'from': 'gpt', 'value': 'A car.'}]},
        {'id': 'b', 'image': 'b.png', 'conversations': [{'from': 'human', 'value': 'Colour?'},
                                                        {'from': 'gpt', 'value': 'Green.'}]},
        {'id': 'c', 'conversations': [{'from': 'human', 'value': 'Hi'}, {'from': 'gpt', 'value': 'Hello'}]},
        {'id': 'd', 'image': 'gone.png', 'conversations': [{'from': 'human', 'value': '<image>x'},
                                                           {'from': 'gpt', 'value': 'y'}]},
        {'id': 'e', 'image': 'a.png', 'conversations': [{'from': 'human', 'value': '<image><image>x'},
                                                        {'from': 'gpt', 'value': 'y'}]},
        {'id': 'f', 'conversations': [{'from': 'human', 'value': 'only a question'}]},
    ]
    source = tmp_path / 'llava.json'
    source.write_text(json.dumps(items))
    out = tmp_path / 'llava.jsonl'
    llava.main(['--input', str(source), '--images', str(image_dir), '--out', str(out)])
    assert _read(out) == [
        {'messages': [{'role': 'user', 'content': '<image>\nWhat is it?'}, {'role': 'assistant', 'content': 'A car.'}],
         'images': ['images/a.png']},
        {'messages': [{'role': 'user', 'content': '<image>\nColour?'}, {'role': 'assistant', 'content': 'Green.'}],
         'images': ['images/b.png']},
        {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]},
    ]


def test_openai_messages(image_dir: Path, tmp_path: Path, capsys):
    png = io.BytesIO()
    Image.new('RGB', (8, 6), 'blue').save(png, format='PNG')
    url = 'data:image/png;base64,' + base64.b64encode(png.getvalue()).decode()
    source = write_jsonl(tmp_path / 'chats.jsonl', [
        {'messages': [{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'file://a.png'}},
                                                   {'type': 'text', 'text': 'Describe.'}]},
                      {'role': 'assistant', 'content': 'Red.'}]},
        {'messages': [{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': url}}]},
                      {'role': 'assistant', 'content': 'x'}]},
        {'messages': [{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'data:image/png;'
                                                                                              'base64,AAAA'}}]},
                      {'role': 'assistant', 'content': 'x'}]},
        '{"messages": [',
        {'messages': [{'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'gone.png'}}]},
                      {'role': 'assistant', 'content': 'x'}]},
        {'messages': [{'role': 'user', 'content': 'no answer'}]},
    ])
    out = tmp_path / 'converted.jsonl'
    openai_messages.main(['--input', str(source), '--images', str(image_dir), '--out', str(out)])
    records = _read(out)
    assert records[0] == {'messages': [{'role': 'user', 'content': [{'type': 'image', 'image': 'images/a.png'},
                                                                    {'type': 'text', 'text': 'Describe.'}]},
                                       {'role': 'assistant', 'content': 'Red.'}]}
    decoded = records[1]['messages'][0]['content'][0]['image']
    assert decoded.startswith('converted_images/') and (tmp_path / decoded).read_bytes() == png.getvalue()
    assert len(records) == 2
    err = capsys.readouterr().err
    assert 'chats.jsonl:3: not an image: the data URL (UnidentifiedImageError' in err, err
    assert len(list((tmp_path / 'converted_images').iterdir())) == 1, 'bytes that are not an image are not written'


def test_csv_qa(image_dir: Path, tmp_path: Path, capsys):
    source = tmp_path / 'qa.csv'
    source.write_text('image_path,question,answer\na.png,"What, exactly?",A car\ngone.png,Q,A\nb.png,,A\n')
    out = tmp_path / 'qa.jsonl'
    csv_qa.main(['--input', str(source), '--images', str(image_dir), '--out', str(out)])
    assert _read(out) == [{'messages': [
        {'role': 'user', 'content': [{'type': 'image', 'image': 'images/a.png'},
                                     {'type': 'text', 'text': 'What, exactly?'}]},
        {'role': 'assistant', 'content': 'A car'}]}]
    err = capsys.readouterr().err
    assert f'skipped {source}:3: image file not found' in err and f'skipped {source}:4: empty question' in err
    assert 'wrote 1 records, skipped 2' in err


@pytest.mark.parametrize('as_pickle', [True, False])
def test_refcoco(image_dir: Path, tmp_path: Path, as_pickle: bool):
    refs = [{'ref_id': 1, 'ann_id': 10, 'image_id': 1, 'split': 'val',
             'sentences': [{'sent': 'the red car'}, {'sent': 'left car'}]},
            {'ref_id': 2, 'ann_id': 10, 'image_id': 1, 'split': 'train', 'sentences': [{'sent': 'x'}]},
            {'ref_id': 3, 'ann_id': 99, 'image_id': 1, 'split': 'val', 'sentences': [{'sent': 'y'}]}]
    refs_path = tmp_path / ('refs.p' if as_pickle else 'refs.json')
    refs_path.write_bytes(pickle.dumps(refs)) if as_pickle else refs_path.write_text(json.dumps(refs))
    instances = tmp_path / 'instances.json'
    instances.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'b.png', 'width': 96, 'height': 64}],
                                     'annotations': [{'id': 10, 'bbox': [48, 16, 24, 32]}]}))
    out = tmp_path / 'refcoco.jsonl'
    refcoco.main(['--refs', str(refs_path), '--instances', str(instances), '--images', str(image_dir),
                  '--split', 'val', '--out', str(out)])
    records = _read(out)
    assert len(records) == 2
    assert records[0]['messages'][0]['content'][1]['text'] == ('Locate "the red car" in the image and give its '
                                                                'bounding box as JSON.')
    assert json.loads(records[0]['messages'][1]['content']) == [{'desc': 'the red car',
                                                                  'bbox_2d': [500, 250, 750, 750]}]


def test_refcoco_answers_in_the_coordinates_of_the_config_it_is_for(image_dir: Path, tmp_path: Path):
    """A chat record trains as written: for Qwen2.5-VL (pixels of the image the model receives) the 0-1000 numbers
    trained every box at the wrong place. `--config` writes the training config's convention, the one the project's
    geometry records get (and ms-swift's grounding path, tests/datasets/builders/test_coords.py)."""
    from src.config import load_and_validate
    from src.datasets.builders import coords_of

    refs = tmp_path / 'refs.json'
    refs.write_text(json.dumps([{'ref_id': 1, 'ann_id': 10, 'image_id': 1, 'split': 'val',
                                 'sentences': [{'sent': 'the red car'}]}]))
    instances = tmp_path / 'instances.json'
    instances.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'b.png', 'width': 96, 'height': 64}],
                                     'annotations': [{'id': 10, 'bbox': [48, 16, 24, 32]}]}))
    config = REPO / 'configs' / 'smoke' / 'qwen2_5_vl_lora.yaml'
    out = tmp_path / 'refcoco_qwen25.jsonl'
    refcoco.main(['--refs', str(refs), '--instances', str(instances), '--images', str(image_dir), '--config',
                  str(config), '--out', str(out)])
    [record] = _read(out)
    box = json.loads(record['messages'][1]['content'])[0]['bbox_2d']
    coords = coords_of(load_and_validate(config))
    assert coords.format == 'model_pixel' and box == coords.to_model([48, 16, 72, 48], 96, 64)
    assert box != [500, 250, 750, 750], 'not the 0-1000 numbers of Qwen3-VL'


CONVERTERS = sorted(p.stem for p in (REPO / 'public_data').glob('*.py') if p.stem not in ('__init__', 'common'))


@pytest.mark.parametrize('module', CONVERTERS)
def test_every_converter_is_a_command_with_help(module: str):
    result = subprocess.run([sys.executable, '-m', f'public_data.{module}', '--help'], cwd=REPO,
                            capture_output=True, text=True, check=True)
    assert 'python -m public_data.' in result.stdout and '--out' in result.stdout


def test_every_converter_has_a_row_with_its_command_in_bring_your_data():
    table = (REPO / 'docs' / 'data' / 'DATA_PREPROCESSING_PIPELINE.md').read_text().split('## Bring your data')[1]
    assert [m for m in CONVERTERS if f'python -m public_data.{m} ' not in table] == []
