"""Reading dense answers back: what counts as a parse failure, an invalid entry, and where coordinates land."""
from __future__ import annotations

import pytest

from src.datasets.builders.coords import Coords
from src.eval.parse import INVALID_DESC, Obj, parse_dense


def test_a_rendered_answer_reads_back_in_pixels():
    answer = parse_dense('[{"desc": "car", "bbox_2d": [250, 500, 750, 1000]},'
                         ' {"desc": "lane", "line": [0, 0, 1000, 1000]}]', 200, 100)
    assert answer.parsed and answer.invalid == 0
    assert answer.objects == (Obj('car', 'bbox_2d', (50.0, 50.0, 150.0, 100.0)),
                              Obj('lane', 'line', (0.0, 0.0, 200.0, 100.0)))


@pytest.mark.parametrize('text', [
    '```json\n[{"desc": "car", "bbox_2d": [0, 0, 10, 10]}]\n```',
    'Here are the objects: [{"desc": "car", "bbox_2d": [0, 0, 10, 10]}] done.',
])
def test_text_around_the_list_is_ignored(text):
    assert parse_dense(text, 100, 100).objects == (Obj('car', 'bbox_2d', (0.0, 0.0, 1.0, 1.0)),)


@pytest.mark.parametrize('text', [
    '', 'no objects here', '[{"desc": "car", "bbox_2d": [0, 0, 10', '{"desc": "car"}', '<|filler_1|>' * 5, None, 42,
])
def test_unreadable_answers_are_parse_failures_without_objects(text):
    answer = parse_dense(text, 100, 100)
    assert not answer.parsed and answer.objects == ()


def test_bad_entries_stay_as_predictions_without_geometry():
    answer = parse_dense('[{"desc": "car", "bbox_2d": [0, 0, 10]}, {"bbox_2d": [0, 0, 5, 5]}, "car",'
                         ' {"desc": "car", "bbox_2d": [0, 0, 5, 5], "poly": [0, 0, 1, 1, 2, 0]},'
                         ' {"desc": "road", "poly": [0, 0, 10, true, 5, 5]},'
                         ' {"desc": "ok", "poly": [0, 0, 9, 0, 9, 9]}]',
                         100, 100)
    assert answer.parsed and answer.invalid == 5
    assert [o.desc for o in answer.objects] == ['car', INVALID_DESC, INVALID_DESC, 'car', 'road', 'ok']
    assert [o.kind for o in answer.objects] == [None] * 5 + ['poly']


def test_pixel_answers_and_out_of_range_values_are_clipped_to_the_image():
    assert parse_dense('[{"desc": "a", "bbox_2d": [-5, 3, 140, 60]}]', 100, 50, Coords('pixel')).objects[0].coords == \
        (0.0, 3.0, 100.0, 50.0)


def test_model_coords_round_trip():
    pixels = [12.0, 30.0, 640.0, 480.0]
    norm1000 = Coords('norm1000')
    back = norm1000.from_model(norm1000.to_model(pixels, 640, 480), 640, 480)
    assert back == pytest.approx(pixels, abs=640 / 1000)
    with pytest.raises(ValueError, match='unknown coord_format'):
        Coords('xyxy')


def test_the_answer_is_the_first_list_of_objects_not_the_first_bracket():
    """Read from the first `[`, a bare object's coordinates counted as four invalid objects (false positives, and no
    parse failure) and a `[2]` in prose hid the list that followed it."""
    bare = parse_dense('{"desc": "car", "bbox_2d": [100, 100, 500, 500]}', 100, 100)
    assert (bare.parsed, bare.objects, bare.invalid) == (False, (), 0)
    prose = parse_dense('Found [2] objects: [{"desc": "car", "bbox_2d": [100, 100, 500, 500]}]', 100, 100)
    assert prose.parsed and prose.invalid == 0 and [o.desc for o in prose.objects] == ['car']
    mixed = parse_dense('[{"desc": "car", "bbox_2d": [100, 100, 500, 500]}, "junk"]', 100, 100)
    assert mixed.parsed and mixed.invalid == 1, 'a list holding an object is the answer, its junk counted'
    assert parse_dense('[]', 100, 100).parsed and not parse_dense('[1, 2]', 100, 100).parsed
