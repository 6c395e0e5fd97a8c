"""Augmentation config errors name the op and the parameter; colour ops keep geometry and size."""
import numpy as np
from PIL import Image

from src.config.augmentation import parse_augmentation
from src.config.loader import dotted
from src.datasets.augmentation import augmenter_for, sample_rng


def build(raw):
    """(the augmenter of a raw `augmentation` mapping, its problems as `key.path: message`)."""
    spec, problems = parse_augmentation(raw)
    return augmenter_for(spec), [f'{dotted(path)}: {message}' for path, message in problems]


def test_unknown_op_lists_the_valid_ones():
    _, problems = build({'ops': [{'name': 'mosaic'}]})
    assert problems[0].startswith("ops[0]: unknown op 'mosaic'; valid ops: hflip, vflip, rotate")


def test_unknown_parameter_is_named():
    _, problems = build({'ops': [{'name': 'rotate', 'max_degrees': 5}]})
    assert problems == ['ops[0]: (rotate) unknown parameter `max_degrees`; valid: max_deg']


def test_probability_outside_unit_interval():
    _, problems = build({'ops': [{'name': 'hflip', 'prob': 2}]})
    assert problems == ['ops[0].prob: (hflip) must be in [0, 1], got 2']


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


def test_the_config_schema_lists_every_op_with_its_own_parameters_and_the_ops_declare_no_defaults():
    import inspect

    from src.config.augmentation import COLOUR, GEOMETRIC
    from src.datasets.augmentation.ops import COLOR_OPS, GEOMETRIC_OPS

    for schema, ops in ((GEOMETRIC, GEOMETRIC_OPS), (COLOUR, COLOR_OPS)):
        assert list(schema) == list(ops)
        for name, function in ops.items():
            params = {k: p.default for k, p in inspect.signature(function).parameters.items()
                      if k not in ('size', 'image', 'rng')}
            assert list(schema[name]) == list(params), name
            assert all(d is inspect.Parameter.empty for d in params.values()), f'{name}: defaults live in OP_PARAMS'


def test_a_colour_range_draws_factors_inside_it():
    from src.datasets.augmentation.ops import color_jitter

    image = Image.new('RGB', (8, 8), (100, 100, 100))
    values = [np.asarray(color_jitter(image, np.random.default_rng(s), brightness=[1.5, 1.6], contrast=0,
                                      saturation=0))[0, 0, 0] for s in range(20)]
    assert all(150 <= v <= 160 for v in values) and len(set(values)) > 1


def test_colour_jitter_follows_pil_image_enhance_within_a_grey_level_per_step():
    from PIL import ImageEnhance

    from src.datasets.augmentation.ops import color_jitter

    rng = np.random.default_rng(1)
    image = Image.fromarray(rng.integers(0, 256, (40, 60, 3), dtype=np.uint8))
    for seed in range(5):
        draw = np.random.default_rng(seed)
        expected = image
        for enhancer in (ImageEnhance.Brightness, ImageEnhance.Contrast, ImageEnhance.Color):
            expected = enhancer(expected).enhance(draw.uniform(0.8, 1.2))  # the same draws, in the same order
        ours = color_jitter(image, np.random.default_rng(seed), brightness=0.2, contrast=0.2, saturation=0.2)
        difference = np.abs(np.asarray(ours, dtype=int) - np.asarray(expected, dtype=int))
        assert difference.max() <= 3, seed


def test_geometry_that_resamples_resamples_once_to_the_size_the_template_will_use():
    """A crop's odd size would be resized again by the template; with `model_size` the warp produces the template's
    size itself, and the boxes follow the same map as the pixels."""
    import functools

    from src.datasets.builders.coords import model_image_size

    augmenter, _ = build({'ops': [{'name': 'crop', 'prob': 1.0, 'min_scale': 0.7, 'max_scale': 0.9}]})
    augmenter.model_size = functools.partial(model_image_size, max_pixels=None, factor=32)
    pixels = np.zeros((150, 200, 3), dtype=np.uint8)
    pixels[60:100, 80:140] = 255  # a white box at [80, 60, 140, 100]
    record = {'width': 200, 'height': 150, 'objects': [{'desc': 'box', 'bbox_2d': [80, 60, 140, 100]}]}
    for seed in range(5):
        out, moved, _ = augmenter(Image.fromarray(pixels), record, sample_rng(seed, 0, 0))
        _, crop_size, _ = augmenter.plan((200, 150), sample_rng(seed, 0, 0))
        assert out.size == (moved['width'], moved['height']) == augmenter.model_size(*crop_size)
        assert out.size[0] % 32 == 0 and out.size[1] % 32 == 0 and out.size != crop_size
        ys, xs = np.nonzero(np.asarray(out)[..., 0] > 127)
        x1, y1, x2, y2 = moved['objects'][0]['bbox_2d']
        assert abs(xs.min() - x1) <= 1 and abs(xs.max() + 1 - x2) <= 1, seed
        assert abs(ys.min() - y1) <= 1 and abs(ys.max() + 1 - y2) <= 1, seed


def test_no_geometry_leaves_the_resize_to_the_template():
    import functools

    from src.datasets.builders.coords import model_image_size

    augmenter, _ = build({'ops': [{'name': 'color_jitter', 'prob': 1.0}]})
    augmenter.model_size = functools.partial(model_image_size, max_pixels=None, factor=32)
    out, moved, _ = augmenter(Image.new('RGB', (70, 50)), {'width': 70, 'height': 50, 'objects': []},
                              sample_rng(0, 0, 0))
    assert out.size == (70, 50) and (moved['width'], moved['height']) == (70, 50)
