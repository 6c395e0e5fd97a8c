"""Property-style checks: coordinates follow the same map as the pixels, for random geometry and op chains."""
import numpy as np
import pytest
from PIL import Image, ImageDraw

from src.config.augmentation import parse_augmentation
from src.datasets.augmentation import augmenter_for, sample_rng
from src.datasets.augmentation.geometry import transform_object, transform_points

GEOMETRIC = ['hflip', 'vflip', 'rotate', 'scale', 'crop', 'resize_by_scale', 'pad_to_multiple']


def build(raw):
    """(the augmenter of a raw `augmentation` mapping, its problems)."""
    spec, problems = parse_augmentation(raw)
    return augmenter_for(spec), problems


def _random_chain(rng: np.random.Generator):
    names = rng.choice(GEOMETRIC, size=int(rng.integers(1, 5)), replace=True)
    spec = {'ops': [{'name': str(n), 'prob': 1.0} for n in names], 'rotate_box_to': 'poly'}
    augmenter, problems = build(spec)
    assert problems == []
    return augmenter


def _inside(coords, width, height) -> bool:
    xs, ys = coords[0::2], coords[1::2]
    return min(xs) >= 0 and min(ys) >= 0 and max(xs) <= width and max(ys) <= height


@pytest.mark.parametrize('seed', range(40))
def test_every_point_of_random_geometry_moves_with_the_map(seed: int):
    rng = np.random.default_rng(seed)
    w, h = int(rng.integers(64, 400)), int(rng.integers(64, 400))
    augmenter = _random_chain(rng)
    objects = []
    for kind, n in (('bbox_2d', 2), ('poly', int(rng.integers(3, 7))), ('line', int(rng.integers(2, 6)))):
        xs, ys = rng.uniform(0, w, n), rng.uniform(0, h, n)
        if kind == 'bbox_2d':
            xs, ys = np.sort(xs), np.sort(ys)
        objects.append({'desc': kind, kind: [float(v) for p in zip(xs, ys) for v in p]})
    out, moved, dropped = augmenter(Image.new('RGB', (w, h)), {'width': w, 'height': h, 'objects': objects},
                                    sample_rng(seed, 0, 7))
    matrix, size, _ = augmenter.plan((w, h), sample_rng(seed, 0, 7))  # the same draws, so the same map
    assert (moved['width'], moved['height']) == out.size == size
    survivors = {o['desc']: o for o in moved['objects']}
    assert dropped == len(objects) - len(survivors)
    for before in objects:
        kind = before['desc']
        coords = before[kind]
        if kind == 'bbox_2d':
            x1, y1, x2, y2 = coords
            coords = [x1, y1, x2, y1, x2, y2, x1, y2]
        expected = transform_points(coords, matrix)
        if not _inside(expected, *size):
            continue  # clipped at the border: covered by the clipping tests
        after = survivors[kind]
        if kind == 'bbox_2d' and 'bbox_2d' in after:  # axis-aligned chain, or a rotated box kept as a box
            xs, ys = expected[0::2], expected[1::2]
            assert np.allclose(after['bbox_2d'], [min(xs), min(ys), max(xs), max(ys)], atol=1.0)
        else:
            assert np.allclose(after.get('poly') or after[kind], expected, atol=1.0)


@pytest.mark.parametrize('seed', range(20))
def test_a_drawn_marker_lands_where_its_coordinates_say(seed: int):
    rng = np.random.default_rng(100 + seed)
    w, h = int(rng.integers(96, 320)), int(rng.integers(96, 320))
    augmenter = _random_chain(rng)
    cx, cy = rng.uniform(0.4 * w, 0.6 * w), rng.uniform(0.4 * h, 0.6 * h)
    image = Image.new('RGB', (w, h))
    ImageDraw.Draw(image).ellipse([cx - 4, cy - 4, cx + 4, cy + 4], fill=(255, 255, 255))
    record = {'width': w, 'height': h, 'objects': [{'desc': 'marker', 'poly': [cx - 4, cy, cx, cy - 4, cx + 4, cy,
                                                                               cx, cy + 4]}]}
    out, moved, _ = augmenter(image, record, sample_rng(seed, 0, 0))
    if not moved['objects'] or len(moved['objects'][0]['poly']) != 8:
        pytest.skip('the marker was cropped by this chain')
    pixels = np.asarray(out.convert('L'), dtype=np.float64)
    ys, xs = np.nonzero(pixels > 40)
    weights = pixels[ys, xs]
    seen = ((xs * weights).sum() / weights.sum() + 0.5, (ys * weights).sum() / weights.sum() + 0.5)
    poly = np.array(moved['objects'][0]['poly']).reshape(-1, 2)
    assert np.allclose(seen, poly.mean(axis=0), atol=1.0)


def test_crop_drops_objects_that_leave_the_image_and_counts_them():
    augmenter, _ = build({'ops': [{'name': 'crop', 'min_scale': 0.5, 'max_scale': 0.5}]})
    record = {'width': 100, 'height': 100, 'objects': [
        {'desc': 'everywhere', 'bbox_2d': [0, 0, 100, 100]},
        {'desc': 'corner-a', 'bbox_2d': [0, 0, 4, 4]},
        {'desc': 'corner-b', 'bbox_2d': [96, 96, 100, 100]},
    ]}
    _, moved, dropped = augmenter(Image.new('RGB', (100, 100)), record, sample_rng(0, 0, 0))
    assert (moved['width'], moved['height']) == (50, 50)
    assert moved['objects'][0] == {'desc': 'everywhere', 'bbox_2d': [0.0, 0.0, 50.0, 50.0]}
    assert dropped == len(record['objects']) - len(moved['objects']) >= 1


def test_rotated_box_becomes_bounding_box_or_polygon():
    box = {'desc': 'b', 'bbox_2d': [40, 40, 60, 60]}
    from src.datasets.augmentation.geometry import rotation
    matrix = rotation(45, 50, 50)
    as_box = transform_object(box, matrix, 100, 100, 'bbox')
    half_diagonal = 10 * 2**0.5
    assert np.allclose(as_box['bbox_2d'], [50 - half_diagonal, 50 - half_diagonal, 50 + half_diagonal,
                                           50 + half_diagonal])
    as_poly = transform_object(box, matrix, 100, 100, 'poly')
    assert len(as_poly['poly']) == 8


def test_line_leaving_the_image_is_clipped_at_the_border():
    line = {'desc': 'l', 'line': [50, 50, 150, 50]}
    assert transform_object(line, np.eye(3), 100, 100)['line'] == [50.0, 50.0, 100.0, 50.0]


def test_same_seed_same_augmentation_other_epoch_differs():
    augmenter, _ = build({'ops': [{'name': 'rotate', 'max_deg': 30}, {'name': 'color_jitter'}]})
    image = Image.new('RGB', (64, 64), (120, 60, 30))
    record = {'width': 64, 'height': 64, 'objects': [{'desc': 'a', 'bbox_2d': [20, 20, 40, 40]}]}
    a = augmenter(image, record, sample_rng(1, 0, 3))
    b = augmenter(image, record, sample_rng(1, 0, 3))
    c = augmenter(image, record, sample_rng(1, 1, 3))
    assert a[1] == b[1] and np.array_equal(np.asarray(a[0]), np.asarray(b[0]))
    assert a[1] != c[1]


@pytest.mark.parametrize('mode', ['RGB', 'L'])
def test_warp_matches_pils_affine_transform_away_from_the_borders(mode: str):
    """OpenCV does the resampling (faster); the half-pixel convention must match PIL's, which maps pixel centres."""
    from src.datasets.augmentation.geometry import rotation, scaling, translation, warp_image

    rng = np.random.default_rng(0)
    image = Image.fromarray(rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)).resize((256, 192)).convert(mode)
    # zoom in about the centre, then rotate: the source covers the whole canvas, so no fill border to compare
    matrix = rotation(9.0, 128, 96) @ translation(128, 96) @ scaling(1.3, 1.3) @ translation(-128, -96)
    ours = np.asarray(warp_image(image, matrix, (256, 192), fill=7), dtype=int)
    reference = np.asarray(image.transform((256, 192), Image.Transform.AFFINE,
                                           tuple(np.linalg.inv(matrix)[:2].reshape(-1)),
                                           resample=Image.Resampling.BILINEAR,
                                           fillcolor=7 if mode == 'L' else (7,) * 3),
                           dtype=int)
    assert ours.shape == reference.shape
    assert np.abs(ours - reference)[2:-2, 2:-2].max() <= 2
