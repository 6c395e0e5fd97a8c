"""Detection data as annotation tools export it (Ultralytics YOLO, Pascal VOC, Hugging Face `datasets` parquet, Label
Studio JSON): fixtures written from each tool's documented layout (the parquet by `datasets` itself), broken ones,
and a round trip per format: a known pixel box written the tool's way comes back as the same pixels."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from PIL import Image

from public_data import hf_dataset, labelstudio, voc, yolo
from public_data.common import run
from src.datasets import DenseCaptionDataset
from src.datasets.validate import main as validate_main

W, H = 160, 120
BOX = [10.0, 20.0, 70.0, 90.0]
"""The known box, in pixel edges of a 160x120 image: x1, y1, x2, y2."""


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _accepted(path: Path) -> None:
    """The validator passes the file and every record builds as training builds it."""
    assert validate_main([str(path)]) == 0
    dataset = DenseCaptionDataset(path, None)
    for idx in range(len(dataset)):
        dataset.inputs(idx)


def _image(path: Path, size: tuple[int, int] = (W, H), exif_orientation: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.new('RGB', size, (90, 140, 200))
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(path, exif=exif.tobytes()) if exif_orientation else image.save(path)
    return path


def _close(box: list[float], expected: list[float] = BOX) -> bool:
    return all(abs(a - b) <= 1 for a, b in zip(box, expected))


# --- Ultralytics YOLO ---------------------------------------------------------------------------------------------

def _roboflow_export(root: Path) -> Path:
    """A Roboflow "YOLOv8" export as Ultralytics reads it: data.yaml at the root with `../train/images` paths and
    `names` as a list, train/images + train/labels, one background image without a label file."""
    root.mkdir(parents=True)
    (root / 'data.yaml').write_text('train: ../train/images\nval: ../valid/images\ntest: ../test/images\n\n'
                                    "nc: 2\nnames: ['cat', 'dog']\n\nroboflow:\n  workspace: me\n  version: 1\n")
    cx, cy = (BOX[0] + BOX[2]) / 2 / W, (BOX[1] + BOX[3]) / 2 / H
    w, h = (BOX[2] - BOX[0]) / W, (BOX[3] - BOX[1]) / H
    _image(root / 'train' / 'images' / 'one_jpg.rf.abc.jpg')
    (root / 'train' / 'labels').mkdir(parents=True)
    (root / 'train' / 'labels' / 'one_jpg.rf.abc.txt').write_text(f'1 {cx:.6f} {cy:.6f} {w:.6f} {h:.6f}\n')
    _image(root / 'train' / 'images' / 'background.jpg')
    return root / 'data.yaml'


def test_yolo_roboflow_export_round_trips_the_box_and_drops_background_images(tmp_path: Path, capsys):
    data = _roboflow_export(tmp_path / 'pets')
    out = tmp_path / 'pets.jsonl'
    report = yolo.convert_file(data, 'train', out)
    [record] = _read(out)
    assert record['objects'][0]['desc'] == 'dog' and _close(record['objects'][0]['bbox_2d'])
    assert (record['width'], record['height'], record['dataset']) == (W, H, 'pets')
    assert report.skipped == {'background image (empty or missing label file)': 1}
    _accepted(out)


def test_yolo_coco8_seg_layout_polygons_and_names_mapping(tmp_path: Path):
    """coco8-seg's layout: `path`, `train: images/train`, `names` as a mapping; polygon label lines."""
    root = tmp_path / 'coco8-seg'
    (tmp_path / 'coco8-seg.yaml').write_text('path: coco8-seg\ntrain: images/train\nval: images/val\ntest:\n'
                                             'names:\n  0: person\n  1: bicycle\n  2: car\n')
    _image(root / 'images' / 'train' / '000000000009.jpg')
    (root / 'labels' / 'train').mkdir(parents=True)
    points = [(10, 20), (70, 20), (70, 90), (10, 90)]
    line = '2 ' + ' '.join(f'{x / W:.6f} {y / H:.6f}' for x, y in points)
    (root / 'labels' / 'train' / '000000000009.txt').write_text(line + '\n')
    out = tmp_path / 'seg.jsonl'
    yolo.convert_file(tmp_path / 'coco8-seg.yaml', 'train', out)
    obj = _read(out)[0]['objects'][0]
    assert obj['desc'] == 'car' and all(abs(a - b) <= 1 for a, b in zip(obj['poly'], sum(map(list, points), [])))
    yolo.convert_file(tmp_path / 'coco8-seg.yaml', 'train', out, geometry='bbox')
    assert _close(_read(out)[0]['objects'][0]['bbox_2d'])
    _accepted(out)


def test_yolo_pose_labels_keep_the_box(tmp_path: Path):
    root = tmp_path / 'pose'
    root.mkdir(parents=True)
    (root / 'data.yaml').write_text('path: .\ntrain: images/train\nkpt_shape: [2, 3]\nnames: {0: person}\n')
    _image(root / 'images' / 'train' / 'p.png')
    (root / 'labels' / 'train').mkdir(parents=True)
    (root / 'labels' / 'train' / 'p.txt').write_text('0 0.25 0.458333 0.375 0.583333 0.2 0.3 2 0.4 0.5 1\n')
    out = tmp_path / 'pose.jsonl'
    report = yolo.convert_file(root / 'data.yaml', 'train', out)
    assert _close(_read(out)[0]['objects'][0]['bbox_2d'])
    assert report.notes['pose label: the box kept, its keypoints not'] == 1


@pytest.mark.parametrize('line, message', [
    ('0 80 60 40 30', 'coordinate 80.0 is outside 0-1; YOLO labels are normalised'),
    ('0 0.5 0.5 abc 0.1', 'not a label line'),
    ('5 0.5 0.5 0.1 0.1', 'class 5 is not in `names` (0-1)'),
    ('0 0.5 0.5 0.1', '3 numbers after the class'),
])
def test_yolo_malformed_label_is_one_error_with_file_and_line_and_no_output(tmp_path: Path, capsys, line, message):
    data = _roboflow_export(tmp_path / 'pets')
    (tmp_path / 'pets' / 'train' / 'labels' / 'one_jpg.rf.abc.txt').write_text(f'\n{line}\n')
    out = tmp_path / 'out.jsonl'
    assert run(yolo.main, ['--input', str(data), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert 'one_jpg.rf.abc.txt:2: ' in err and message in err and not out.exists()


def test_yolo_label_file_saved_as_utf16_is_one_error_naming_it(tmp_path: Path, capsys):
    data = _roboflow_export(tmp_path / 'pets')
    label = tmp_path / 'pets' / 'train' / 'labels' / 'one_jpg.rf.abc.txt'
    label.write_text('0 0.5 0.5 0.2 0.2\n', encoding='utf-16')  # Notepad's "Unicode"
    out = tmp_path / 'out.jsonl'
    assert run(yolo.main, ['--input', str(data), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert f'error: {label}: not UTF-8 (byte 0xff at offset 0); save it as UTF-8' in err and not out.exists()
    assert 'Traceback' not in err


def test_yolo_wrong_split_and_missing_root_name_what_to_pass(tmp_path: Path, capsys):
    data = _roboflow_export(tmp_path / 'pets')
    assert run(yolo.main, ['--input', str(data), '--split', 'val', '--out', str(tmp_path / 'o.jsonl')]) == 1
    assert 'is neither a folder of images nor a .txt list' in capsys.readouterr().err
    (tmp_path / 'x.yaml').write_text('path: /nowhere/at/all\ntrain: images\nnames: [a]\n')
    assert run(yolo.main, ['--input', str(tmp_path / 'x.yaml'), '--out', str(tmp_path / 'o.jsonl')]) == 1
    assert 'pass --root DIR' in capsys.readouterr().err
    (tmp_path / 'y.yaml').write_text('path: .\nval: images\nnames: [a]\n')
    assert run(yolo.main, ['--input', str(tmp_path / 'y.yaml'), '--out', str(tmp_path / 'o.jsonl')]) == 1
    assert 'no `train` split (it names val)' in capsys.readouterr().err


def test_yolo_image_with_exif_rotation_is_skipped_with_the_reason(tmp_path: Path):
    data = _roboflow_export(tmp_path / 'pets')
    _image(tmp_path / 'pets' / 'train' / 'images' / 'one_jpg.rf.abc.jpg', exif_orientation=6)
    with pytest.raises(Exception, match=r'EXIF orientation 6 \(1\)'):
        yolo.convert_file(data, 'train', tmp_path / 'o.jsonl')


# --- Pascal VOC ---------------------------------------------------------------------------------------------------

VOC_XML = """<annotation>
\t<folder>VOC2007</folder>
\t<filename>{name}</filename>
\t<source>
\t\t<database>The VOC2007 Database</database>
\t\t<annotation>PASCAL VOC2007</annotation>
\t\t<image>flickr</image>
\t</source>
\t<owner><flickrid>Fried Camels</flickrid><name>Jinky the Fruit Bat</name></owner>
\t<size>
\t\t<width>{w}</width>
\t\t<height>{h}</height>
\t\t<depth>3</depth>
\t</size>
\t<segmented>0</segmented>
\t<object>
\t\t<name>person</name>
\t\t<pose>Left</pose>
\t\t<truncated>0</truncated>
\t\t<difficult>0</difficult>
\t\t<bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox>
\t\t<part><name>head</name><bndbox><xmin>12</xmin><ymin>22</ymin><xmax>30</xmax><ymax>40</ymax></bndbox></part>
\t</object>
\t<object>
\t\t<name>chair</name>
\t\t<pose>Unspecified</pose>
\t\t<truncated>1</truncated>
\t\t<difficult>1</difficult>
\t\t<bndbox><xmin>100</xmin><ymin>50</ymin><xmax>150</xmax><ymax>110</ymax></bndbox>
\t</object>
</annotation>
"""


def _voc(root: Path) -> Path:
    """VOCdevkit/VOC2007 as the devkit ships it; the box written 1-based inclusive (xmin 11 is pixel column 10)."""
    voc_dir = root / 'VOCdevkit' / 'VOC2007'
    (voc_dir / 'Annotations').mkdir(parents=True)
    (voc_dir / 'ImageSets' / 'Main').mkdir(parents=True)
    _image(voc_dir / 'JPEGImages' / '000005.jpg')
    x1, y1, x2, y2 = int(BOX[0]) + 1, int(BOX[1]) + 1, int(BOX[2]), int(BOX[3])
    (voc_dir / 'Annotations' / '000005.xml').write_text(VOC_XML.format(name='000005.jpg', w=W, h=H, x1=x1, y1=y1,
                                                                       x2=x2, y2=y2))
    (voc_dir / 'ImageSets' / 'Main' / 'trainval.txt').write_text('000005\n')
    (voc_dir / 'ImageSets' / 'Main' / 'chair_trainval.txt').write_text('000005  1\n')
    return voc_dir


def test_voc_round_trips_one_based_corners_and_keeps_difficult_objects(tmp_path: Path):
    voc_dir = _voc(tmp_path)
    out = tmp_path / 'voc.jsonl'
    report = voc.convert_file(voc_dir, 'trainval', out)
    [record] = _read(out)
    assert [o['desc'] for o in record['objects']] == ['person', 'chair']  # the head <part> is not an object
    assert record['objects'][0]['bbox_2d'] == BOX
    assert record['objects'][1]['bbox_2d'] == [99.0, 49.0, 150.0, 110.0]
    assert report.notes['difficult object kept'] == 1 and record['dataset'] == 'VOC2007'
    _accepted(out)


def test_voc_drop_difficult_and_keep_partial(tmp_path: Path):
    voc_dir = _voc(tmp_path)
    out = tmp_path / 'voc.jsonl'
    with pytest.raises(Exception, match=r'image would lose 1 object\(s\) \(difficult object'):
        voc.convert_file(voc_dir, 'trainval', out, drop_difficult=True)
    voc.convert_file(voc_dir, 'trainval', out, drop_difficult=True, keep_partial=True)
    assert [o['desc'] for o in _read(out)[0]['objects']] == ['person']


def test_voc_errors_name_the_file_and_what_to_pass(tmp_path: Path, capsys):
    voc_dir = _voc(tmp_path)
    out = tmp_path / 'o.jsonl'
    assert run(voc.main, ['--input', str(voc_dir.parent), '--split', 'trainval', '--out', str(out)]) == 1
    assert 'it holds VOC2007: pass one of them' in capsys.readouterr().err
    assert run(voc.main, ['--input', str(voc_dir), '--split', 'train', '--out', str(out)]) == 1
    assert 'splits here: trainval' in capsys.readouterr().err
    (voc_dir / 'Annotations' / '000005.xml').write_text('<annotation>\n<object><name>cat</name>\n</annotation>\n')
    assert run(voc.main, ['--input', str(voc_dir), '--split', 'trainval', '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert '000005.xml:3:' in err and 'not valid XML' in err and not out.exists()


def test_voc_size_that_disagrees_with_the_image_is_skipped(tmp_path: Path):
    voc_dir = _voc(tmp_path)
    xml = voc_dir / 'Annotations' / '000005.xml'
    xml.write_text(xml.read_text().replace(f'<width>{W}</width>', '<width>500</width>'))
    with pytest.raises(Exception, match=f'<size> 500x{H} differs from the image file, which is {W}x{H}'):
        voc.convert_file(voc_dir, 'trainval', tmp_path / 'o.jsonl')


# --- Hugging Face datasets parquet --------------------------------------------------------------------------------

def _png(size=(W, H)) -> bytes:
    buf = io.BytesIO()
    Image.new('RGB', size, (200, 100, 50)).save(buf, 'PNG')
    return buf.getvalue()


def _cppe5_like(folder: Path) -> Path:
    """cppe-5's features, written by `datasets` itself as push_to_hub lays them out: `objects` a Sequence of dicts
    with COCO [x, y, w, h] boxes and a ClassLabel category."""
    import datasets

    features = datasets.Features({
        'image_id': datasets.Value('int64'), 'image': datasets.Image(), 'width': datasets.Value('int32'),
        'height': datasets.Value('int32'),
        'objects': datasets.Sequence({
            'id': datasets.Value('int64'), 'area': datasets.Value('int64'),
            'bbox': datasets.Sequence(datasets.Value('float32'), length=4),
            'category': datasets.ClassLabel(names=['Coverall', 'Face_Shield', 'Gloves', 'Goggles', 'Mask'])})})
    x1, y1, x2, y2 = BOX
    rows = {'image_id': [15, 16], 'image': [{'bytes': _png(), 'path': 'img15.png'}, {'bytes': _png(), 'path': None}],
            'width': [W, W], 'height': [H, H],
            'objects': [{'id': [1], 'area': [4200], 'bbox': [[x1, y1, x2 - x1, y2 - y1]], 'category': [4]},
                        {'id': [], 'area': [], 'bbox': [], 'category': []}]}
    (folder / 'data').mkdir(parents=True)
    path = folder / 'data' / 'train-00000-of-00001.parquet'
    datasets.Dataset.from_dict(rows, features=features).to_parquet(str(path))
    return folder


def test_hf_parquet_cppe5_layout_round_trips_and_writes_the_images(tmp_path: Path):
    source = _cppe5_like(tmp_path / 'cppe-5')
    out, images = tmp_path / 'cppe5.jsonl', tmp_path / 'cppe5_images'
    report = hf_dataset.convert_file(source, 'train', out, images, 'xywh')
    [record] = _read(out)
    assert record['objects'][0]['desc'] == 'Mask' and _close(record['objects'][0]['bbox_2d'])
    assert (images / 'img15.png').is_file() and record['images'] == ['cppe5_images/img15.png']
    assert report.skipped == {'image has no objects (a dense-caption record needs at least one)': 1}
    _accepted(out)
    hf_dataset.convert_file(source, 'train', out, images, 'xywh')  # a rerun reuses its own files


def test_hf_parquet_list_of_dicts_with_corner_boxes(tmp_path: Path):
    import datasets

    features = datasets.Features({'image': datasets.Image(), 'objects': datasets.List({
        'bbox': datasets.List(datasets.Value('float32'), length=4),
        'label': datasets.ClassLabel(names=['cat', 'dog'])})})
    path = tmp_path / 'val.parquet'
    datasets.Dataset.from_dict({'image': [{'bytes': _png(), 'path': None}], 'objects': [[{'bbox': BOX, 'label': 1}]]},
                               features=features).to_parquet(str(path))
    out = tmp_path / 'x.jsonl'
    hf_dataset.convert_file(path, 'val', out, tmp_path / 'imgs', 'xyxy')
    [record] = _read(out)
    assert record['objects'] == [{'desc': 'dog', 'bbox_2d': BOX}] and record['images'] == ['imgs/val-000000.png']


def test_hf_parquet_errors_say_what_to_pass(tmp_path: Path, capsys):
    source = _cppe5_like(tmp_path / 'cppe-5')
    out = tmp_path / 'o.jsonl'
    base = ['--input', str(source), '--images', str(tmp_path / 'i'), '--out', str(out)]
    assert run(hf_dataset.main, base) == 1
    assert 'pass --box-format xywh' in capsys.readouterr().err
    assert run(hf_dataset.main, base + ['--box-format', 'xywh', '--split', 'test']) == 1
    assert "no parquet files for split 'test' (splits found: train)" in capsys.readouterr().err
    assert run(hf_dataset.main, base + ['--box-format', 'xywh', '--bbox-field', 'box']) == 1
    assert '`objects` has no `box` field (fields: id, area, bbox, category)' in capsys.readouterr().err
    (tmp_path / 'i').mkdir()
    (tmp_path / 'i' / 'img15.png').write_bytes(b'my own file')
    assert run(hf_dataset.main, base + ['--box-format', 'xywh']) == 1
    assert 'already exists with other content' in capsys.readouterr().err
    assert (tmp_path / 'i' / 'img15.png').read_bytes() == b'my own file' and not out.exists()
    broken = tmp_path / 'broken.parquet'
    broken.write_bytes((source / 'data' / 'train-00000-of-00001.parquet').read_bytes()[:200])
    assert run(hf_dataset.main, ['--input', str(broken), '--images', str(tmp_path / 'j'), '--out', str(out),
                                 '--box-format', 'xywh']) == 1
    assert 'not a parquet file' in capsys.readouterr().err


# --- Label Studio JSON export -------------------------------------------------------------------------------------

def _labelstudio(folder: Path, rotation: float = 0) -> Path:
    """A JSON export as Label Studio documents it: uploads under /data/upload/<project>/<8 hex>-<name>, regions in
    percent of original_width / original_height, a choices result, a task without annotations."""
    _image(folder / 'media' / 'upload' / '3' / '9f2c41de-street.png')
    x1, y1, x2, y2 = BOX
    rectangle = {'x': x1 / W * 100, 'y': y1 / H * 100, 'width': (x2 - x1) / W * 100, 'height': (y2 - y1) / H * 100,
                 'rotation': rotation, 'rectanglelabels': ['Car']}
    tasks = [
        {'id': 1, 'data': {'image': '/data/upload/3/9f2c41de-street.png'},
         'annotations': [{'id': 1, 'completed_by': 1, 'was_cancelled': False, 'ground_truth': False,
                          'result': [
                              {'id': 'r1', 'type': 'rectanglelabels', 'from_name': 'label', 'to_name': 'image',
                               'original_width': W, 'original_height': H, 'image_rotation': 0, 'value': rectangle},
                              {'id': 'p1', 'type': 'polygonlabels', 'from_name': 'poly', 'to_name': 'image',
                               'original_width': W, 'original_height': H, 'image_rotation': 0,
                               'value': {'points': [[62.5, 16.6667], [93.75, 16.6667], [93.75, 50.0]],
                                         'polygonlabels': ['Sign']}},
                              {'id': 'c1', 'type': 'choices', 'from_name': 'weather', 'to_name': 'image',
                               'value': {'choices': ['Sunny']}}],
                          'lead_time': 12.5, 'created_at': '2026-11-30T10:00:00Z'}],
         'predictions': [], 'meta': {}, 'project': 3},
        {'id': 2, 'data': {'image': '/data/upload/3/0a1b2c3d-empty.png'}, 'annotations': [], 'predictions': []},
    ]
    path = folder / 'project-3-at-2026-11-30-10-00-1a2b3c4d.json'
    path.write_text(json.dumps(tasks, indent=2))
    return path


def test_labelstudio_export_round_trips_rectangles_and_polygons(tmp_path: Path):
    export = _labelstudio(tmp_path)
    out = tmp_path / 'ls.jsonl'
    report = labelstudio.convert_file(export, out, tmp_path / 'media')
    [record] = _read(out)
    car, sign = record['objects']
    assert car['desc'] == 'Car' and _close(car['bbox_2d'])
    assert sign == {'desc': 'Sign', 'poly': [100.0, 20.0, 150.0, 20.0, 150.0, 60.0]}
    assert report.skipped == {'task without annotations (none, or all cancelled)': 1}
    _accepted(out)


def test_labelstudio_rotated_rectangle_becomes_its_polygon(tmp_path: Path):
    export = _labelstudio(tmp_path, rotation=90)
    out = tmp_path / 'ls.jsonl'
    labelstudio.convert_file(export, out, tmp_path / 'media')
    poly = _read(out)[0]['objects'][0]['poly']
    # 90 degrees clockwise about the top-left corner (10, 20): width 60 runs down, height 70 runs left.
    expected = [10, 20, 10, 80, -60, 80, -60, 20]
    clamped = [min(max(v, 0), W if i % 2 == 0 else H) for i, v in enumerate(expected)]
    assert all(abs(a - b) <= 1 for a, b in zip(poly, clamped))


def test_labelstudio_image_matched_without_the_upload_prefix(tmp_path: Path):
    export = _labelstudio(tmp_path)
    (tmp_path / 'media' / 'upload' / '3' / '9f2c41de-street.png').rename(tmp_path / 'media' / 'street.png')
    out = tmp_path / 'ls.jsonl'
    labelstudio.convert_file(export, out, tmp_path / 'media')
    assert _read(out)[0]['images'] == ['media/street.png']


def _ls_task(task_id: int, reference: str) -> dict:
    x1, y1, x2, y2 = BOX
    value = {'x': x1 / W * 100, 'y': y1 / H * 100, 'width': (x2 - x1) / W * 100, 'height': (y2 - y1) / H * 100,
             'rectanglelabels': ['Car']}
    return {'id': task_id, 'data': {'image': reference}, 'annotations': [{'id': task_id, 'result': [
        {'id': f'r{task_id}', 'type': 'rectanglelabels', 'original_width': W, 'original_height': H, 'value': value}]}]}


def test_labelstudio_matches_a_file_only_where_its_path_agrees(tmp_path: Path, capsys):
    """Two cameras' folders hold files of the same name: a task is given the file of its own folder, never the
    other's, whether its reference is a local-storage path or a cloud URL; a task whose folder is missing is
    skipped, not given a file of the same name from elsewhere."""
    _image(tmp_path / 'media' / 'cam2' / '0001.jpg')
    export = tmp_path / 'export.json'
    export.write_text(json.dumps([_ls_task(1, '/data/local-files/?d=cam1/0001.jpg'),
                                  _ls_task(2, 's3://bucket/cam1/0001.jpg'),
                                  _ls_task(3, 'gs://bucket/cam2/0001.jpg')]))
    out = tmp_path / 'ls.jsonl'
    report = labelstudio.convert_file(export, out, tmp_path / 'media')
    assert [r['images'] for r in _read(out)] == [['media/cam2/0001.jpg']]
    assert report.skipped == {'image not found under --images': 2}
    assert 'skipped task 1: image not found under --images: cam1/0001.jpg' in capsys.readouterr().err
    _image(tmp_path / 'media' / 'cam1' / '0001.jpg')
    labelstudio.convert_file(export, out, tmp_path / 'media')
    assert [r['images'] for r in _read(out)] == [['media/cam1/0001.jpg'], ['media/cam1/0001.jpg'],
                                                 ['media/cam2/0001.jpg']]


def test_labelstudio_a_bare_name_or_an_upload_is_found_in_any_folder(tmp_path: Path):
    """A reference without folders says nothing about them, and an upload's stored name names one file wherever it
    was copied: both are found under a subfolder of --images."""
    _image(tmp_path / 'media' / 'train' / '0001.jpg')
    _image(tmp_path / 'media' / 'photos' / 'abcd1234-0002.jpg')
    export = tmp_path / 'export.json'
    export.write_text(json.dumps([_ls_task(1, '0001.jpg'), _ls_task(2, '/data/upload/3/abcd1234-0002.jpg')]))
    out = tmp_path / 'ls.jsonl'
    labelstudio.convert_file(export, out, tmp_path / 'media')
    assert [r['images'] for r in _read(out)] == [['media/train/0001.jpg'], ['media/photos/abcd1234-0002.jpg']]


def test_labelstudio_two_uploads_of_one_original_name_are_not_guessed(tmp_path: Path, capsys):
    """Uploads keep their original name after an 8-hex prefix; with only the originals under --images, two uploads
    of the same name (two cameras' IMG_0001.JPG) could be either photo, so both are skipped, whatever their order;
    an upload whose name is its own is matched by it."""
    _image(tmp_path / 'originals' / 'IMG_0001.JPG')
    _image(tmp_path / 'originals' / 'IMG_0002.JPG')
    export = tmp_path / 'export.json'
    export.write_text(json.dumps([_ls_task(1, '/data/upload/3/aaaa1111-IMG_0001.JPG'),
                                  _ls_task(2, '/data/upload/3/cccc3333-IMG_0002.JPG'),
                                  _ls_task(3, '/data/upload/3/bbbb2222-IMG_0001.JPG')]))
    out = tmp_path / 'ls.jsonl'
    report = labelstudio.convert_file(export, out, tmp_path / 'originals')
    assert [r['images'] for r in _read(out)] == [['originals/IMG_0002.JPG']]
    assert sum(report.skipped.values()) == 2
    assert ('skipped task 1: uploads aaaa1111-IMG_0001.JPG and bbbb2222-IMG_0001.JPG have the same original name '
            'IMG_0001.JPG, so which photo it is is unknown; point --images at the uploaded files (with their '
            'prefixes)') in capsys.readouterr().err


def test_labelstudio_broken_exports(tmp_path: Path, capsys):
    export = _labelstudio(tmp_path)
    out = tmp_path / 'o.jsonl'
    truncated = tmp_path / 'cut.json'
    truncated.write_text(export.read_text()[:300])
    assert run(labelstudio.main, ['--input', str(truncated), '--images', str(tmp_path), '--out', str(out)]) == 1
    assert 'invalid JSON' in capsys.readouterr().err and not out.exists()
    minimal = tmp_path / 'min.json'
    minimal.write_text(json.dumps([{'image': '/data/upload/3/9f2c41de-street.png', 'id': 1,
                                    'label': [{'x': 1, 'y': 1, 'width': 5, 'height': 5, 'rectanglelabels': ['Car']}]}]))
    assert run(labelstudio.main, ['--input', str(minimal), '--images', str(tmp_path), '--out', str(out)]) == 1
    assert 'JSON-MIN export' in capsys.readouterr().err
    tasks = json.loads(export.read_text())
    tasks[0]['annotations'][0]['result'][0]['original_width'] = 2 * W
    export.write_text(json.dumps(tasks))
    assert run(labelstudio.main, ['--input', str(export), '--images', str(tmp_path), '--out', str(out)]) == 1
    assert f'Label Studio saw the image as {2 * W}x{H}, the file is {W}x{H}' in capsys.readouterr().err



# --- found by a red team with each tool's own documentation and source ---------------------------------------------

@pytest.mark.parametrize('value', ['nan', 'inf', '-inf', 'x'])
def test_voc_a_coordinate_that_is_not_a_finite_number_is_one_error(tmp_path: Path, capsys, value):
    voc_dir = _voc(tmp_path)
    xml = voc_dir / 'Annotations' / '000005.xml'
    xml.write_text(xml.read_text().replace('<xmin>100</xmin>', f'<xmin>{value}</xmin>'))
    out = tmp_path / 'o.jsonl'
    assert run(voc.main, ['--input', str(voc_dir), '--split', 'trainval', '--out', str(out)]) == 1
    assert f"<bndbox><xmin> must be a number, got '{value}'" in capsys.readouterr().err and not out.exists()


def test_voc_the_image_id_names_the_image_not_a_stale_filename(tmp_path: Path):
    voc_dir = _voc(tmp_path)
    _image(voc_dir / 'JPEGImages' / '000007.jpg', size=(W + 10, H))
    xml = voc_dir / 'Annotations' / '000005.xml'
    xml.write_text(xml.read_text().replace('<filename>000005.jpg</filename>', '<filename>000007.jpg</filename>'))
    out = tmp_path / 'voc.jsonl'
    report = voc.convert_file(voc_dir, 'trainval', out)
    assert _read(out)[0]['images'] == ['VOCdevkit/VOC2007/JPEGImages/000005.jpg']
    assert report.notes['<filename> other than the image id (the id names the image, as the devkit reads it)'] == 1


def _parquet(path: Path, boxes: list, categories: list) -> Path:
    import datasets

    features = datasets.Features({'image': datasets.Image(), 'objects': datasets.Sequence({
        'bbox': datasets.Sequence(datasets.Value('float32')), 'category': datasets.ClassLabel(names=['a', 'b'])})})
    path.parent.mkdir(parents=True, exist_ok=True)
    datasets.Dataset.from_dict({'image': [{'bytes': _png(), 'path': None}] * len(boxes),
                                'objects': [{'bbox': b, 'category': c} for b, c in zip(boxes, categories)]},
                               features=features).to_parquet(str(path))
    return path


def test_hf_parquet_bad_boxes_are_skipped_with_their_reason_never_written_or_truncated(tmp_path: Path):
    path = _parquet(tmp_path / 'val.parquet',
                    boxes=[[BOX], [[float('nan'), 1, 5, 5]], [[1, 1, float('inf'), 5]], [[1, 2, 3]],
                           [BOX, [0, 0, 5, 5]]],
                    categories=[[0], [0], [0], [0], [1]])
    out = tmp_path / 'x.jsonl'
    report = hf_dataset.convert_file(path, None, out, tmp_path / 'imgs', 'xyxy')
    assert [r['dataset'] for r in _read(out)] == [tmp_path.name], "the dataset's folder names it, not the split"
    assert hf_dataset.dataset_name(tmp_path / 'cppe-5' / 'data' / 'train-00000-of-00001.parquet', 'train') == 'cppe-5'
    (tmp_path / 'cppe-5').mkdir()
    assert hf_dataset.dataset_name(tmp_path / 'cppe-5', 'val') == 'cppe-5'
    lost = {reason.split(' (', 1)[1].split(')')[0] for reason in report.skipped if reason.startswith('image would')}
    assert lost == {'box has a value that is not a finite number', 'box is not 4 numbers'}
    assert report.skipped['`bbox` has 2 boxes and `category` 1 categories'] == 1


def test_hf_parquet_without_metadata_images_stored_by_path_are_found_under_images(tmp_path: Path):
    """A parquet another tool wrote (no `datasets` metadata): the fields come from its schema, the image by path."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    _image(tmp_path / 'photos' / 'imgs' / 'rel.png')
    table = pa.table({'image': [{'bytes': None, 'path': 'imgs/rel.png'}],
                      'objects': [{'bbox': [BOX], 'label': ['car']}]})
    path = tmp_path / 'set' / 'data' / 'train-00000-of-00001.parquet'
    path.parent.mkdir(parents=True)
    pq.write_table(table, path)
    out = tmp_path / 'x.jsonl'
    hf_dataset.convert_file(tmp_path / 'set', None, out, tmp_path / 'photos', 'xyxy')
    assert _read(out)[0]['objects'] == [{'desc': 'car', 'bbox_2d': BOX}]


def _task(result: list[dict], data: dict | None = None) -> list[dict]:
    return [{'id': 7, 'data': data or {'image': '/data/upload/3/9f2c41de-street.png'},
             'annotations': [{'id': 1, 'was_cancelled': False, 'result': result}]}]


def _rect(**value) -> dict:
    return {'id': 'r', 'type': 'rectanglelabels', 'original_width': W, 'original_height': H,
            'value': {'x': 6.25, 'y': 16.6667, 'width': 37.5, 'height': 58.3333, 'rotation': 0,
                      'rectanglelabels': ['Car'], **value}}


@pytest.mark.parametrize('result, objects', [
    ([_rect()], [('Car', BOX)]),
    ([_rect(x=43.75, y=75.0, width=-37.5, height=-58.3333)], [('Car', BOX)]),  # drawn up and to the left
    ([_rect(rectanglelabels=['Car', 'Red'])], [('Car', BOX), ('Red', BOX)]),
    ([{**_rect(), 'type': 'rectangle', 'value': {k: v for k, v in _rect()['value'].items() if k != 'rectanglelabels'}},
      {'id': 'r', 'type': 'labels', 'value': {**_rect()['value'], 'labels': ['Car']}}], [('Car', BOX)]),
])
def test_labelstudio_rectangles_as_the_editor_writes_them(tmp_path: Path, result, objects):
    _labelstudio(tmp_path)
    export = tmp_path / 'one.json'
    export.write_text(json.dumps(_task(result)))
    out = tmp_path / 'o.jsonl'
    labelstudio.convert_file(export, out, tmp_path / 'media')
    got = [(o['desc'], o['bbox_2d']) for o in _read(out)[0]['objects']]
    assert [d for d, _ in got] == [d for d, _ in objects] and all(_close(b, e) for (_, b), (_, e) in zip(got, objects))


def test_labelstudio_a_region_without_its_numbers_is_skipped_not_a_traceback(tmp_path: Path):
    _labelstudio(tmp_path)
    export = tmp_path / 'one.json'
    value = {k: v for k, v in _rect()['value'].items() if k != 'width'}
    export.write_text(json.dumps(_task([{**_rect(), 'value': value}])))
    with pytest.raises(Exception, match='rectangle x, y, width, height has a value that is not a finite number'):
        labelstudio.convert_file(export, tmp_path / 'o.jsonl', tmp_path / 'media')


def test_labelstudio_other_data_keys_and_names_as_label_studio_stores_uploads(tmp_path: Path):
    _image(tmp_path / 'media' / 'my photo (1).png')
    export = tmp_path / 'one.json'
    export.write_text('\ufeff' + json.dumps(_task([_rect()], {'img': '/data/upload/3/5e6f7a8b-my_photo_1.png'})))
    out = tmp_path / 'o.jsonl'
    labelstudio.convert_file(export, out, tmp_path / 'media')
    assert _read(out)[0]['images'] == ['media/my photo (1).png']
    export.write_text(json.dumps(_task([_rect()], {'img': 'a.png', 'thumb': 'b.png'})))
    with pytest.raises(Exception, match=r'task data has no `image` \(keys: img, thumb\); pass --data-key'):
        labelstudio.convert_file(export, out, tmp_path / 'media')


def test_yolo_data_yaml_as_ultralytics_reads_it(tmp_path: Path):
    """Quoted class ids, `validation` for `val`, a label file with a byte order mark and a label repeated in
    another spelling (Ultralytics compares the numbers), a macOS `._` companion file, and an image in a format of
    Ultralytics' list that PIL cannot open (HEIC): counted as skipped, not left out."""
    root = tmp_path / 'ds'
    root.mkdir()
    (root / 'data.yaml').write_text("path: .\nvalidation: images/val\nnames:\n  '0': person\n  '1': car\n")
    _image(root / 'images' / 'val' / 'a.jpg')
    (root / 'images' / 'val' / '._a.jpg').write_bytes(b'\x00\x05\x16\x07')
    (root / 'labels' / 'val').mkdir(parents=True)
    line = '1 0.25 0.458333 0.375 0.583333'
    (root / 'labels' / 'val' / 'a.txt').write_text(f'\ufeff{line}\n1 0.250 0.4583330 0.375 0.583333\n',
                                                   encoding='utf-8')
    (root / 'images' / 'val' / 'b.heic').write_bytes(b'\x00\x00\x00\x18ftypheic' + bytes(16))
    (root / 'labels' / 'val' / 'b.txt').write_text(line + '\n')
    out = tmp_path / 'o.jsonl'
    report = yolo.convert_file(root / 'data.yaml', 'val', out)
    [record] = _read(out)
    assert [o['desc'] for o in record['objects']] == ['car'] and report.notes['repeated label line dropped'] == 1
    assert report.skipped == {'not an image': 1}
    (root / 'data.yaml').write_text('path: .\nvalidation: images/val\nnc: 2\n')
    yolo.convert_file(root / 'data.yaml', 'val', out)
    assert _read(out)[0]['objects'][0]['desc'] == 'class_1'


def test_yolo_polygons_with_no_area_are_degenerate_like_boxes(tmp_path: Path, capsys):
    """Three equal points, or points just past the right edge that clamp onto it, enclose no area: the image would
    lose an object, as with a box of no width, instead of training a line as an object's outline."""
    root = tmp_path / 'ds'
    root.mkdir()
    (root / 'data.yaml').write_text('path: .\ntrain: images/train\nnames: [person]\n')
    for name, line in (('a', '0 0.1 0.1 0.1 0.1 0.1 0.1'), ('b', '0 1.005 0.1 1.005 0.5 1.009 0.9'),
                       ('c', '0 0.1 0.1 0.5 0.1 0.5 0.5')):
        _image(root / 'images' / 'train' / f'{name}.jpg')
        (root / 'labels' / 'train').mkdir(parents=True, exist_ok=True)
        (root / 'labels' / 'train' / f'{name}.txt').write_text(line + '\n')
    out = tmp_path / 'o.jsonl'
    report = yolo.convert_file(root / 'data.yaml', 'train', out, geometry='poly')
    assert [r['images'][0].rsplit('/', 1)[-1] for r in _read(out)] == ['c.jpg']
    assert sum(report.skipped.values()) == 2 and 'degenerate polygon' in capsys.readouterr().err


# --- all four train as they are -----------------------------------------------------------------------------------

@pytest.mark.slow
def test_every_detection_format_trains_as_converted(make_config, tmp_path: Path):
    from src.sft import main

    out = tmp_path / 'converted'
    yolo.convert_file(_roboflow_export(tmp_path / 'pets'), 'train', out / 'yolo.jsonl')
    voc.convert_file(_voc(tmp_path), 'trainval', out / 'voc.jsonl')
    hf_dataset.convert_file(_cppe5_like(tmp_path / 'cppe-5'), 'train', out / 'hf.jsonl', out / 'hf_images', 'xywh')
    labelstudio.convert_file(_labelstudio(tmp_path), out / 'ls.jsonl', tmp_path / 'media')
    lines = [line for name in ('yolo', 'voc', 'hf', 'ls') for line in (out / f'{name}.jsonl').read_text().splitlines()]
    data = out / 'all.jsonl'
    data.write_text('\n'.join(lines) + '\n')
    main(make_config('dense_augment.yaml', name='detection', custom={'train_jsonl': str(data)},
                     training={'max_steps': 2, 'save_steps': 2}))
    assert (tmp_path / 'detection' / 'checkpoint-2' / 'adapter_model.safetensors').is_file()


def test_labelstudio_local_storage_paths_under_images_or_a_folder_in_it(tmp_path: Path):
    _image(tmp_path / 'media' / 'storage' / 'cams' / 'front' / 'x.png')
    export = tmp_path / 'one.json'
    export.write_text(json.dumps(_task([_rect()], {'image': '/data/local-files/?d=cams/front/x.png'})))
    out = tmp_path / 'o.jsonl'
    labelstudio.convert_file(export, out, tmp_path / 'media')
    assert _read(out)[0]['images'] == ['media/storage/cams/front/x.png']
