"""The geometry-record contract: every problem of a record is listed with its field."""
from pathlib import Path

import pytest

from src.datasets.contract import record_problems


def _record(**overrides):
    record = {'images': ['images/a.png'], 'width': 64, 'height': 64,
              'objects': [{'desc': 'car', 'bbox_2d': [1, 2, 30, 40]}]}
    record.update(overrides)
    return record


def test_valid_record_has_no_problems(image_dir: Path):
    assert record_problems(_record(), image_dir.parent) == []
    assert record_problems(_record(objects=[], summary='无关图片'), image_dir.parent) == []


@pytest.mark.parametrize('overrides,problem', [
    ({'images': []}, '`images` must be a list with exactly one image'),
    ({'images': ['images/none.png']}, 'images[0]: image file not found'),
    ({'images': [{'bytes': 5}]}, 'images[0]: inline images are {"bytes": "<base64>"}'),
    ({'width': 0}, '`width` and `height` must be positive integers'),
    ({'objects': [], 'summary': None}, '`summary` must be a string'),
    ({'objects': []}, 'needs `objects` (dense / grounding) or a `summary` text'),
    ({'objects': [{'desc': '', 'bbox_2d': [1, 2, 3, 4]}]}, 'objects[0].desc: must be a non-empty string'),
    ({'objects': [{'desc': 'a'}]}, 'objects[0]: needs exactly one geometry'),
    ({'objects': [{'desc': 'a', 'bbox_2d': [1, 2, 3, 4], 'poly': [1, 1, 2, 2, 3, 1]}]}, 'needs exactly one geometry'),
    ({'objects': [{'desc': 'a', 'bbox_2d': [1, 2, 3]}]}, '`bbox_2d` needs 4 numbers'),
    ({'objects': [{'desc': 'a', 'bbox_2d': [30, 2, 3, 4]}]}, 'must have x1 < x2 and y1 < y2'),
    ({'objects': [{'desc': 'a', 'bbox_2d': [1, 2, 3, 99]}]}, 'leaves the 64x64 image'),
    ({'objects': [{'desc': 'a', 'poly': [1, 1, 2, 2]}]}, '`poly` needs an even number of coordinates, at least 6'),
    ({'objects': [{'desc': 'a', 'poly': [64, 8, 64, 40, 64, 60]}]}, '`poly` [64, 8, 64, 40, 64, 60] encloses no area '
                                                                     '(its points lie on one line)'),
    ({'objects': [{'desc': 'a', 'poly': [10, 8, 10, 8, 10, 8]}]}, 'encloses no area'),
    ({'objects': [{'desc': 'a', 'line': [1, 1, 2]}]}, '`line` needs an even number of coordinates, at least 4'),
    ({'objects': [{'desc': 'a', 'line': [1, 'x', 2, 3]}]}, '`line` must be a list of numbers'),
    ({'extra': 1}, 'the record: unknown key(s) `extra`; valid: images, width'),
])
def test_each_violation_is_named(image_dir: Path, overrides, problem: str):
    problems = record_problems(_record(**overrides), image_dir.parent)
    assert any(problem in p for p in problems), problems


def test_all_problems_of_a_record_are_reported_together(image_dir: Path):
    record = _record(width=-1, objects=[{'desc': '', 'bbox_2d': [1, 2, 3, 4]}], images=['images/none.png'])
    assert len(record_problems(record, image_dir.parent)) == 3
