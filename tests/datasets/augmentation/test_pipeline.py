"""Augmentation config errors name the op and the parameter; colour ops keep geometry and size."""
import numpy as np
from PIL import Image

from src.datasets.augmentation import parse_augmentation, sample_rng


def test_unknown_op_lists_the_valid_ones():
    _, problems = parse_augmentation({'ops': [{'name': 'mosaic'}]})
    assert problems[0].startswith("ops[0]: unknown op 'mosaic'; valid ops: hflip, vflip, rotate")


def test_unknown_parameter_is_named():
    _, problems = parse_augmentation({'ops': [{'name': 'rotate', 'max_degrees': 5}]})
    assert problems == ['ops[0] (rotate): unknown parameter `max_degrees`; valid: max_deg']


def test_probability_outside_unit_interval():
    _, problems = parse_augmentation({'ops': [{'name': 'hflip', 'prob': 2}]})
    assert problems == ['ops[0] (hflip).prob: must be a number in [0, 1], got 2']


def test_rotate_box_to_choices():
    _, problems = parse_augmentation({'ops': [], 'rotate_box_to': 'mask'})
    assert "rotate_box_to: must be one of ('bbox', 'poly'), got 'mask'" in problems


def test_colour_ops_change_pixels_not_geometry():
    ops = [{'name': n} for n in ('color_jitter', 'gamma', 'clahe', 'autocontrast')]
    augmenter, problems = parse_augmentation({'ops': ops})
    assert problems == []
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    record = {'width': 64, 'height': 48, 'objects': [{'desc': 'a', 'bbox_2d': [1, 2, 30, 40]}]}
    out, moved, dropped = augmenter(image, record, sample_rng(0, 0, 0))
    assert out.size == (64, 48) and moved == record and dropped == 0
    assert not np.array_equal(np.asarray(out), np.asarray(image))


def test_hflip_mirrors_coordinates_exactly():
    augmenter, _ = parse_augmentation({'ops': [{'name': 'hflip'}]})
    record = {'width': 100, 'height': 50, 'objects': [{'desc': 'a', 'bbox_2d': [10, 5, 30, 25]}]}
    _, moved, _ = augmenter(Image.new('RGB', (100, 50)), record, sample_rng(0, 0, 0))
    assert moved['objects'] == [{'desc': 'a', 'bbox_2d': [70.0, 5.0, 90.0, 25.0]}]
