"""Affine maps applied to an image and to every bbox / poly / line drawn on it, so the two never drift apart.

Coordinates are continuous pixels: the image covers [0, W] x [0, H] and pixel (i, j) is the unit square whose
centre is (i + 0.5, j + 0.5). A map is a 3x3 matrix taking source points to destination points; the image is
resampled through its inverse, so a point and the pixel under it move together.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from PIL import Image

Matrix = np.ndarray  # (3, 3), source -> destination


def translation(dx: float, dy: float) -> Matrix:
    return np.array([[1.0, 0.0, dx], [0.0, 1.0, dy], [0.0, 0.0, 1.0]])


def scaling(sx: float, sy: float) -> Matrix:
    return np.array([[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]])


def rotation(degrees: float, cx: float, cy: float) -> Matrix:
    """Counter-clockwise on screen (y points down) by ``degrees`` about (cx, cy)."""
    t = math.radians(degrees)
    c, s = math.cos(t), math.sin(t)
    rotate = np.array([[c, s, 0.0], [-s, c, 0.0], [0.0, 0.0, 1.0]])
    return translation(cx, cy) @ rotate @ translation(-cx, -cy)


def transform_points(coords: list[float], matrix: Matrix) -> list[float]:
    """Apply ``matrix`` to a flat [x, y, x, y, ...] list."""
    points = np.asarray(coords, dtype=np.float64).reshape(-1, 2)
    moved = points @ matrix[:2, :2].T + matrix[:2, 2]
    return moved.reshape(-1).tolist()


def warp_image(image: Image.Image, matrix: Matrix, size: tuple[int, int], fill: int = 0) -> Image.Image:
    """Resample ``image`` onto a ``size`` canvas so that source point p lands on ``matrix @ p`` (bilinear).

    OpenCV's ``warpAffine`` puts pixel centres at integer coordinates, this module at i + 0.5, hence the half-pixel
    shifts around the map. It is faster than PIL's ``Image.transform`` (docs/performance.md has the figures) and
    agrees with it to within two grey levels away from the borders.
    """
    import cv2

    half = translation(0.5, 0.5)
    inverse = np.linalg.inv(half) @ np.linalg.inv(matrix) @ half  # destination index -> source index
    pixels = np.asarray(image)
    border = (fill, ) * (pixels.shape[2] if pixels.ndim == 3 else 1)
    warped = cv2.warpAffine(pixels, inverse[:2], size, flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=border)
    return Image.fromarray(warped, mode=image.mode)


def is_axis_aligned(matrix: Matrix) -> bool:
    return abs(matrix[0, 1]) < 1e-9 and abs(matrix[1, 0]) < 1e-9


def _clip_polygon(points: list[tuple[float, float]], width: float, height: float) -> list[tuple[float, float]]:
    """Sutherland-Hodgman against the image rectangle."""
    edges = [(lambda p: p[0] >= 0, lambda a, b: _cross_x(a, b, 0.0)),
             (lambda p: p[0] <= width, lambda a, b: _cross_x(a, b, width)),
             (lambda p: p[1] >= 0, lambda a, b: _cross_y(a, b, 0.0)),
             (lambda p: p[1] <= height, lambda a, b: _cross_y(a, b, height))]
    for inside, cross in edges:
        if not points:
            break
        clipped = []
        for i, cur in enumerate(points):
            prev = points[i - 1]
            if inside(cur):
                if not inside(prev):
                    clipped.append(cross(prev, cur))
                clipped.append(cur)
            elif inside(prev):
                clipped.append(cross(prev, cur))
        points = clipped
    return points


def _cross_x(a, b, x):
    t = (x - a[0]) / (b[0] - a[0])
    return (x, a[1] + t * (b[1] - a[1]))


def _cross_y(a, b, y):
    t = (y - a[1]) / (b[1] - a[1])
    return (a[0] + t * (b[0] - a[0]), y)


def _clip_segment(a, b, width, height):
    """Liang-Barsky: the part of segment ab inside the image, or None."""
    (x0, y0), (x1, y1) = a, b
    dx, dy = x1 - x0, y1 - y0
    t0, t1 = 0.0, 1.0
    for p, q in ((-dx, x0), (dx, width - x0), (-dy, y0), (dy, height - y0)):
        if p == 0:
            if q < 0:
                return None
            continue
        t = q / p
        if p < 0:
            t0 = max(t0, t)
        else:
            t1 = min(t1, t)
        if t0 > t1:
            return None
    start = a if t0 == 0.0 else (x0 + t0 * dx, y0 + t0 * dy)
    end = b if t1 == 1.0 else (x0 + t1 * dx, y0 + t1 * dy)  # exact endpoints, so consecutive pieces join
    return start, end


def _clip_line(points, width, height):
    """The longest inside run of a polyline (a line that leaves and re-enters keeps its longer part)."""
    runs: list[list[tuple[float, float]]] = []
    for a, b in zip(points, points[1:]):
        piece = _clip_segment(a, b, width, height)
        if piece is None:
            continue
        if runs and runs[-1][-1] == piece[0]:
            runs[-1].append(piece[1])
        else:
            runs.append([piece[0], piece[1]])
    return max(runs, key=_length, default=[])


def _length(points) -> float:
    return sum(math.dist(a, b) for a, b in zip(points, points[1:]))


def _polygon_area(points) -> float:
    return 0.5 * abs(sum(a[0] * b[1] - b[0] * a[1] for a, b in zip(points, points[1:] + points[:1])))


def transform_object(obj: dict[str, Any], matrix: Matrix, width: int, height: int,
                     rotate_box_to: str = 'bbox') -> dict[str, Any] | None:
    """The object after ``matrix``, clipped to the ``width`` x ``height`` output; None when nothing is left.

    A box under a rotation becomes the bounding box of its rotated corners, or a ``poly`` of them when
    ``rotate_box_to`` is ``poly``.
    """
    kind = next(k for k in ('bbox_2d', 'poly', 'line') if k in obj)
    coords = obj[kind]
    if kind == 'bbox_2d':
        x1, y1, x2, y2 = coords
        corners = transform_points([x1, y1, x2, y1, x2, y2, x1, y2], matrix)
        if not is_axis_aligned(matrix) and rotate_box_to == 'poly':
            kind, coords = 'poly', corners
        else:
            xs, ys = corners[0::2], corners[1::2]
            x1, y1 = max(0.0, min(xs)), max(0.0, min(ys))
            x2, y2 = min(float(width), max(xs)), min(float(height), max(ys))
            if x2 - x1 < 1 or y2 - y1 < 1:
                return None
            return {'desc': obj['desc'], 'bbox_2d': [x1, y1, x2, y2]}
    else:
        coords = transform_points(coords, matrix)
    points = list(zip(coords[0::2], coords[1::2]))
    if kind == 'poly':
        points = _clip_polygon(points, width, height)
        if len(points) < 3 or _polygon_area(points) < 1:
            return None
    else:
        points = _clip_line(points, width, height)
        if len(points) < 2 or _length(points) < 1:
            return None
    return {'desc': obj['desc'], kind: [c for p in points for c in p]}
