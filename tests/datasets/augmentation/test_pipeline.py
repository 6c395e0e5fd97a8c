"""Augmentation config errors name the op and the parameter; colour ops keep geometry and size."""
import numpy as np
from PIL import Image

from src.config.augmentation import parse_augmentation
from src.datasets.augmentation import augmenter_for, sample_rng


def build(raw):
    """(the augmenter of a raw `augmentation` mapping, its problems)."""
    spec, problems = parse_augmentation(raw)
    return augmenter_for(spec), problems


def test_unknown_op_lists_the_valid_ones():
    _, problems = build({'ops': [{'name': 'mosaic'}]})
    assert problems[0].startswith("ops[0]: unknown op 'mosaic'; valid ops: hflip, vflip, rotate")


def test_unknown_parameter_is_named():
    _, problems = build({'ops': [{'name': 'rotate', 'max_degrees': 5}]})
    assert problems == ['ops[0] (rotate): unknown parameter `max_degrees`; valid: max_deg']


def test_probability_outside_unit_interval():
    _, problems = build({'ops': [{'name': 'hflip', 'prob': 2}]})
    assert problems == ['ops[0] (hflip).prob: must be a number in [0, 1], got 2']


def test_rotate_box_to_choices():
    _, problems = build({'ops': [], 'rotate_box_to': 'mask'})
    assert "rotate_box_to: must be one of ('bbox', 'poly'), got 'mask'" in problems


def test_colour_ops_change_pixels_not_geometry():
    ops = [{'name': n} for n in ('color_jitter', 'gamma', 'clahe', 'autocontrast')]
    augmenter, problems = build({'ops': ops})
    assert problems == []
    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
    record = {'width': 64, 'height': 48, 'objects': [{'desc': 'a', 'bbox_2d': [1, 2, 30, 40]}]}
    out, moved, dropped = augmenter(image, record, sample_rng(0, 0, 0))
    assert out.size == (64, 48) and moved == record and dropped == 0
    assert not np.array_equal(np.asarray(out), np.asarray(image))


def test_hflip_mirrors_coordinates_exactly():
    augmenter, _ = build({'ops': [{'name': 'hflip'}]})
    record = {'width': 100, 'height': 50, 'objects': [{'desc': 'a', 'bbox_2d': [10, 5, 30, 25]}]}
    _, moved, _ = augmenter(Image.new('RGB', (100, 50)), record, sample_rng(0, 0, 0))
    assert moved['objects'] == [{'desc': 'a', 'bbox_2d': [70.0, 5.0, 90.0, 25.0]}]


def test_the_config_schema_lists_every_op_with_its_own_parameters_and_defaults():
    import inspect

    from src.config.augmentation import COLOUR, GEOMETRIC
    from src.datasets.augmentation.ops import COLOR_OPS, GEOMETRIC_OPS

    for schema, ops in ((GEOMETRIC, GEOMETRIC_OPS), (COLOUR, COLOR_OPS)):
        assert list(schema) == list(ops)
        for name, function in ops.items():
            params = {k: p.default for k, p in inspect.signature(function).parameters.items()
                      if k not in ('size', 'image', 'rng')}
            assert schema[name] == params, name


def test_a_colour_range_draws_factors_inside_it():
    from src.datasets.augmentation.ops import color_jitter

    image = Image.new('RGB', (8, 8), (100, 100, 100))
    values = [np.asarray(color_jitter(image, np.random.default_rng(s), brightness=[1.5, 1.6], contrast=0,
                                      saturation=0))[0, 0, 0] for s in range(20)]
    assert all(150 <= v <= 160 for v in values) and len(set(values)) > 1
