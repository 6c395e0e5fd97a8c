"""`python -m src.eval.visualize`: ground truth drawn as training sees it, with a gallery page."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from src.datasets.contract import RecordError
from src.eval.visualize import cli, visualize
from tests.conftest import SMOKE_DATA, write_jsonl

COCO = SMOKE_DATA / 'coco_train.jsonl'


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_geometry_records_are_drawn_and_listed(tmp_path: Path):
    page = visualize(COCO, 3, tmp_path / 'plain')
    assert sorted(p.name for p in page.parent.glob('*.png')) == ['0000.png', '0001.png', '0002.png']
    html = page.read_text()
    assert 'coco_train.jsonl:1' in html and 'objects: 2' in html and '<th>score</th>' not in html
    first = json.loads(COCO.read_text().splitlines()[0])
    drawn = _pixels(page.parent / '0000.png')
    assert drawn.shape[1] / drawn.shape[0] == pytest.approx(first['width'] / first['height'], rel=0.02)
    assert (np.abs(drawn.astype(int) - [0, 170, 60]).sum(axis=-1) == 0).any()  # the ground-truth colour is there


def test_a_config_applies_its_augmentation_with_the_draw_of_the_epoch(make_config, tmp_path: Path):
    config = make_config('dense_augment.yaml', training={'seed': 3})
    plain = visualize(COCO, 6, tmp_path / 'plain').parent
    epoch0 = visualize(COCO, 6, tmp_path / 'e0', config).parent
    again = visualize(COCO, 6, tmp_path / 'again', config).parent
    epoch1 = visualize(COCO, 6, tmp_path / 'e1', config, epoch=1).parent
    names = [f'{i:04d}.png' for i in range(6)]

    def same(a: Path, b: Path, name: str) -> bool:
        x, y = _pixels(a / name), _pixels(b / name)
        return x.shape == y.shape and np.array_equal(x, y)

    assert all(same(epoch0, again, n) for n in names)  # seeded: the same draw every time
    assert not all(same(plain, epoch0, n) for n in names)
    assert not all(same(epoch0, epoch1, n) for n in names)
    assert 'augmented as in epoch 1' in (epoch1 / 'index.html').read_text()
    assert 'dropped by augmentation' in (epoch0 / 'index.html').read_text()


def test_chat_records_are_drawn_from_their_answers(tmp_path: Path):
    page = visualize(SMOKE_DATA / 'val.jsonl', 2, tmp_path / 'chat')
    assert len(list(page.parent.glob('*.png'))) == 2
    assert 'objects: 1' in page.read_text()


def test_a_broken_record_names_its_line(tmp_path: Path):
    lines = COCO.read_text().splitlines()[:2]
    broken = json.loads(lines[1])
    broken['objects'][0]['bbox_2d'] = [10, 10, 5, 5]
    path = write_jsonl(tmp_path / 'data.jsonl', [
        {**json.loads(lines[0]), 'images': [str(SMOKE_DATA / 'images' / '000.png')]},
        {**broken, 'images': [str(SMOKE_DATA / 'images' / '001.png')]}])
    with pytest.raises(RecordError, match=r'data.jsonl:2: .*objects\[0\]: `bbox_2d` \[10, 10, 5, 5\] must have x1'):
        visualize(path, 5, tmp_path / 'out')


def test_cli(tmp_path: Path, capsys):
    assert cli([str(COCO), '--n', '1', '--out', str(tmp_path / 'v')]) == 0
    assert 'index.html' in capsys.readouterr().out
    assert cli([str(tmp_path / 'missing.jsonl')]) == 2
    assert 'JSONL file not found' in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli([str(COCO), '--n', '0'])
    assert '--n must be a positive integer' in capsys.readouterr().err


def _labelled(tmp_path: Path, labels: list[str]) -> Path:
    record = json.loads(COCO.read_text().splitlines()[0])
    box = record['objects'][0]['bbox_2d']
    record.update(images=[str(SMOKE_DATA / record['images'][0])],
                  objects=[{'desc': label, 'bbox_2d': box} for label in labels])
    return write_jsonl(tmp_path / 'labels.jsonl', [record])


def test_labels_beyond_ascii_draw_in_dejavu_and_missing_glyphs_are_named(tmp_path: Path, capsys):
    """PIL's default font lacks even `é`; labels are drawn in DejaVu Sans (shipped with matplotlib), and characters
    it lacks (Chinese) are named once with the flag that fixes them, instead of silent empty boxes."""
    from src.eval.draw import LabelFont

    font = LabelFont.choose(None)
    assert font.path is not None and font.path.name == 'DejaVuSans.ttf'
    assert font.missing(['café', 'Straße', 'Ёлка']) == []
    assert cli([str(_labelled(tmp_path, ['café', '行人'])), '--out', str(tmp_path / 'v')]) == 0
    err = capsys.readouterr().err
    assert ('the pictures hold 2 character(s) the font DejaVuSans.ttf has no glyph for (行 人); they are drawn as '
            'boxes. Pass --font with a .ttf / .otf that has them') in err
    assert cli([str(_labelled(tmp_path, ['café'])), '--out', str(tmp_path / 'w'), '--font', str(font.path)]) == 0
    assert 'no glyph' not in capsys.readouterr().err
    (tmp_path / 'broken.ttf').write_bytes(b'not a font')
    assert cli([str(COCO), '--n', '1', '--out', str(tmp_path / 'x'), '--font', str(tmp_path / 'broken.ttf')]) == 2
    assert 'broken.ttf: not a TrueType / OpenType font file PIL can open' in capsys.readouterr().err
