"""What every converter shares when it writes: `--out` is a `.jsonl` file that is not an input (the raw-export
converter once replaced the user's export with its output), the output appears whole or not at all, and an input
shape a converter does not know stops the run with the record's location, never with a bare traceback."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from public_data import coco
from public_data.common import ConversionError, Skip, convert, run
from tests.conftest import REPO

CONVERTERS = sorted([*(REPO / 'public_data').glob('*.py'), REPO / 'data_conversion' / 'convert_raw.py'])


@pytest.mark.parametrize('module', [p for p in CONVERTERS if p.name not in ('__init__.py', 'common.py')],
                         ids=lambda p: p.stem)
def test_every_converter_writes_only_through_convert_and_names_its_inputs(module: Path):
    tree = ast.parse(module.read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call)]
    names = {node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, 'attr', '') for node in calls}
    # (images decoded from the input are written beside the output, never over a file with other content)
    assert not names & {'atomic_jsonl', 'write_text', 'dump'}, 'it writes records on its own'
    opens = [c for c in calls if getattr(c.func, 'id', getattr(c.func, 'attr', '')) == 'open']
    assert all(not any(isinstance(a, ast.Constant) and isinstance(a.value, str) and set(a.value) & set('wax+')
                       for a in c.args[1:2]) for c in opens), 'it opens a file for writing'
    converts = [c for c in calls if getattr(c.func, 'id', None) == 'convert']
    assert converts and all('inputs' in {k.arg for k in c.keywords} for c in converts)


def _export(tmp_path: Path) -> Path:
    Image.new('RGB', (64, 48)).save(tmp_path / 'a.png')
    export = tmp_path / 'export.json'
    export.write_text(json.dumps({'images': [{'file': 'a.png', 'objects': [
        {'label': 'car', 'shape': 'box', 'points': [[2, 2], [30, 20]]}]}]}))
    return export


@pytest.mark.parametrize('out,message', [
    ('export.json', '--out {tmp}/export.json: the output is JSON Lines; name it *.jsonl (nothing was written)'),
    ('a.png', '--out {tmp}/a.png: the output is JSON Lines; name it *.jsonl (nothing was written)'),
])
def test_the_raw_export_converter_never_writes_over_its_input(tmp_path: Path, out: str, message: str):
    export = _export(tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    done = subprocess.run([sys.executable, '-m', 'data_conversion.convert_raw', '--annotations', str(export),
                           '--images', str(tmp_path), '--out', str(tmp_path / out)], cwd=REPO, capture_output=True,
                          text=True)
    assert done.returncode == 1 and done.stderr.strip() == 'error: ' + message.format(tmp=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before


def test_a_jsonl_input_named_as_out_is_refused(tmp_path: Path):
    source = tmp_path / 'in.jsonl'
    with pytest.raises(ConversionError, match='is the input file'):
        convert(iter([('line 1', {})]), lambda item: item, source, desc='x', inputs=[None, source])


def test_an_input_shape_the_converter_does_not_know_stops_with_its_record(tmp_path: Path):
    out = tmp_path / 'out.jsonl'
    items = iter([('line 1', {'bbox': [1, 2, 3, 4]}), ('line 2', {})])
    with pytest.raises(ConversionError) as exc:
        convert(items, lambda item: {'x': item['bbox']}, out, desc='x', inputs=[])
    assert str(exc.value) == "line 2: cannot convert this record (KeyError: 'bbox'); nothing was written"
    assert not out.exists() and not list(tmp_path.iterdir())


def test_skips_are_still_counted_and_the_run_goes_on(tmp_path: Path):
    def one(item):
        if item is None:
            raise Skip('empty')
        return item

    chat = {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]}
    report = convert(iter([('a', None), ('b', chat)]), one, tmp_path / 'o.jsonl', desc='x', inputs=[])
    assert report.written == 1 and report.skipped == {'empty': 1}


def test_the_raw_export_skips_objects_that_are_not_objects_and_unusable_images(tmp_path: Path, capsys):
    export = _export(tmp_path)
    Image.new('I;16', (64, 48)).save(tmp_path / 'deep.png')
    data = json.loads(export.read_text())
    data['images'] += [{'file': 'a.png', 'objects': ['car']},
                       {'file': 'deep.png', 'objects': [{'label': 'car', 'shape': 'box', 'points': [[1, 1], [9, 9]]}]}]
    export.write_text(json.dumps(data))
    from data_conversion import convert_raw

    assert run(convert_raw.main, ['--annotations', str(export), '--images', str(tmp_path),
                                  '--out', str(tmp_path / 'out.jsonl')]) == 0
    err = capsys.readouterr().err
    assert "skipped image a.png: objects[0] is not an object with `label`, `shape` and `points`: 'car'" in err
    assert 'skipped image deep.png: 16-bit' in err and 'wrote 1 records, skipped 2' in err


def test_what_a_converter_writes_goes_through_the_record_check_first(tmp_path: Path, capsys):
    """The class of "converted, then refused by training": whatever a converter's own checks miss (here a float
    width, an empty answer, an image cut short) is a counted skip naming the input record and the problem, and the
    file holds only records the check accepts."""
    Image.new('RGB', (64, 48)).save(tmp_path / 'a.png')
    whole = (tmp_path / 'a.png').read_bytes()
    (tmp_path / 'cut.png').write_bytes(whole[:len(whole) // 2])
    geometry = {'images': ['a.png'], 'width': 64, 'height': 48, 'objects': [{'desc': 'car', 'bbox_2d': [1, 1, 9, 9]}]}
    items = [('in:1', geometry), ('in:2', {**geometry, 'width': 64.0}), ('in:3', {**geometry, 'images': ['cut.png']}),
             ('in:4', {'messages': [{'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': ' '}]})]
    out = tmp_path / 'o.jsonl'
    report = convert(iter(items), lambda item: item, out, desc='x', inputs=[])
    assert [json.loads(line) for line in out.read_text().splitlines()] == [geometry]
    assert report.written == 1 and report.skipped == {'the record check refuses it': 3}
    err = capsys.readouterr().err
    assert 'skipped in:2: the record check refuses it: `width` and `height` must be positive integers' in err
    assert 'skipped in:3: the record check refuses it: images[0]:' in err and 'cut.png' in err
    assert 'skipped in:4: the record check refuses it: messages[1]: the assistant answer is empty' in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ['a.png', 'cut.png', 'o.jsonl'], 'no temporary file left'


def test_an_error_while_reading_the_next_record_names_where_it_was(tmp_path: Path):
    def records():
        yield 'line 1', {}
        raise AttributeError("'str' object has no attribute 'get'")

    with pytest.raises(ConversionError, match=r"^after line 1: cannot read the next record \(AttributeError: 'str' "
                                              r"object has no attribute 'get'\); nothing was written$"):
        convert(records(), lambda item: item, tmp_path / 'o.jsonl', desc='x', inputs=[])


def test_the_raw_export_refuses_labels_that_are_not_text_and_says_what_the_top_level_is(tmp_path: Path, capsys):
    from data_conversion import convert_raw

    export = _export(tmp_path)
    data = json.loads(export.read_text())
    box = {'shape': 'box', 'points': [[2, 2], [30, 20]]}
    data['images'] += [{'file': 'a.png', 'objects': [{**box, 'label': None}]},
                       {'file': 'a.png', 'objects': [{**box, 'label': ['car', 'red']}]}, '000.png']
    export.write_text(json.dumps(data))
    out = tmp_path / 'out.jsonl'
    assert run(convert_raw.main, ['--annotations', str(export), '--images', str(tmp_path), '--out', str(out)]) == 0
    assert [o['desc'] for r in map(json.loads, out.read_text().splitlines()) for o in r['objects']] == ['car']
    err = capsys.readouterr().err
    assert 'objects[0]: `label` must be a text, got None' in err and "got ['car', 'red']" in err
    assert "skipped images[3]: an `images` entry must be an object with `file` and `objects`, got '000.png'" in err
    export.write_text(json.dumps(data['images']))
    assert run(convert_raw.main, ['--annotations', str(export), '--images', str(tmp_path), '--out', str(out)]) == 1
    assert 'the top level is a list; the export is an object {"images": [{"file": ..., "objects": [...]}, ...]}' in (
        capsys.readouterr().err)


def _coco_with(tmp_path: Path, images: list[dict], annotations: list[dict]) -> Path:
    path = tmp_path / 'instances.json'
    path.write_text(json.dumps({'images': images, 'annotations': annotations,
                                'categories': [{'id': 1, 'name': 'car'}]}))
    return path


def test_coco_reads_each_image_header(tmp_path: Path, capsys):
    Image.new('RGB', (64, 48)).save(tmp_path / 'a.png')
    Image.new('RGB', (64, 48)).save(tmp_path / 'b.png')
    rotated = Image.new('RGB', (64, 48))
    exif = rotated.getexif()
    exif[0x0112] = 6
    rotated.save(tmp_path / 'r.jpg', exif=exif)
    box = {'category_id': 1, 'bbox': [1, 1, 10, 10], 'iscrowd': 0}
    source = _coco_with(tmp_path, [{'id': 1, 'file_name': 'a.png', 'width': 64, 'height': 48},
                                   {'id': 2, 'file_name': 'b.png', 'width': 200, 'height': 100},
                                   {'id': 3, 'file_name': 'r.jpg', 'width': 64, 'height': 48},
                                   {'id': 4, 'file_name': 'a.png', 'width': 64, 'height': 48}],
                        [{**box, 'id': 1, 'image_id': 1}, {**box, 'id': 2, 'image_id': 2},
                         {**box, 'id': 3, 'image_id': 3}, {'id': 4, 'image_id': 4, 'category_id': 1, 'iscrowd': 0,
                                                           'segmentation': [[1, 1, 9, 1, 9, 9]]}])
    report = coco.convert_file(source, tmp_path, tmp_path / 'out.jsonl')
    assert report.written == 1
    err = capsys.readouterr().err
    assert f'skipped image 2: size mismatch: {tmp_path}/b.png is 64x48, the annotations say 200x100' in err
    assert 'skipped image 3: EXIF orientation 6' in err
    assert 'skipped annotation 4: annotation without `bbox`' in err


def test_nan_in_an_annotation_file_is_one_error_with_its_line_and_column(tmp_path: Path, capsys):
    """Python's json reads NaN; JSON, and the stream reader, do not: the error still says where."""
    source = tmp_path / 'instances.json'
    source.write_text('{"images": [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}],\n'
                      ' "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [NaN, 1, 2, 3]}],\n'
                      ' "categories": [{"id": 1, "name": "NaN"}]}')
    assert run(coco.main, ['--annotations', str(source), '--images', str(tmp_path), '--out',
                           str(tmp_path / 'o.jsonl')]) == 1
    assert capsys.readouterr().err.strip().endswith(
        f'error: {source}:2:70: invalid JSON: NaN is not a JSON number (write null, or leave the annotation out); '
        'nothing was written')
