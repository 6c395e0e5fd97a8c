"""How alike two objects' geometries are, as a number in [0, 1] that matching thresholds (IoU 0.5, 0.5:0.95).

- ``bbox_2d`` vs ``bbox_2d``: box IoU. A degenerate box (x2 <= x1 or y2 <= y1) has no area and scores 0.
- ``poly`` vs ``poly``: mask IoU, both polygons rasterised on the image's pixel grid.
- ``line`` vs ``line``: ``max(0, 1 - d / (LINE_TOLERANCE * diagonal))`` where ``d`` is the symmetric Chamfer distance
  of the two polylines (the mean distance from points spaced along one to the nearest point of the other, averaged
  both ways). Lines 2.5% of the image diagonal apart on average score 0.5, so they match at the 0.5 threshold.
- Different kinds (a box predicted for a polygon) and entries without geometry score 0.
"""
from __future__ import annotations

import math

import numpy as np
from PIL import Image, ImageDraw

from .parse import Obj

LINE_TOLERANCE = 0.05
"""Chamfer distance, as a fraction of the image diagonal, at which two polylines stop being alike at all."""
LINE_STEP = 0.005
"""Spacing of the points sampled along a polyline, as a fraction of the image diagonal."""


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """>>> box_iou((0, 0, 10, 10), (5, 0, 15, 10))
    0.3333333333333333
    """
    area_a = max(0.0, a[2] - a[0]) * max(0.0, a[3] - a[1])
    area_b = max(0.0, b[2] - b[0]) * max(0.0, b[3] - b[1])
    inter = max(0.0, min(a[2], b[2]) - max(a[0], b[0])) * max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = area_a + area_b - inter
    return inter / union if union > 0 else 0.0


def polygon_mask(coords: tuple[float, ...], width: int, height: int) -> np.ndarray:
    """(height, width) bool mask of the pixels whose centres a polygon covers (PIL's rasterisation)."""
    canvas = Image.new('1', (width, height), 0)
    ImageDraw.Draw(canvas).polygon(list(coords), fill=1)
    return np.asarray(canvas, dtype=bool)


def mask_iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.count_nonzero(a | b)
    return np.count_nonzero(a & b) / union if union else 0.0


def polyline_points(coords: tuple[float, ...], step: float) -> np.ndarray:
    """(N, 2) points along a polyline, at most ``step`` apart, both ends included."""
    vertices = np.asarray(coords, dtype=float).reshape(-1, 2)
    points = [vertices[:1]]
    for start, end in zip(vertices[:-1], vertices[1:]):
        n = max(1, math.ceil(float(np.linalg.norm(end - start)) / step))
        points.append(start + (end - start) * (np.arange(1, n + 1)[:, None] / n))
    return np.concatenate(points)


def line_similarity(a: tuple[float, ...], b: tuple[float, ...], width: int, height: int) -> float:
    diagonal = math.hypot(width, height)
    pa, pb = polyline_points(a, LINE_STEP * diagonal), polyline_points(b, LINE_STEP * diagonal)
    distances = np.linalg.norm(pa[:, None, :] - pb[None, :, :], axis=-1)  # (Na, Nb)
    chamfer = (distances.min(axis=1).mean() + distances.min(axis=0).mean()) / 2
    return max(0.0, 1.0 - float(chamfer) / (LINE_TOLERANCE * diagonal))


def similarity_matrix(preds: list[Obj], gts: list[Obj], width: int, height: int) -> np.ndarray:
    """(len(preds), len(gts)) similarities; each polygon is rasterised once."""
    masks: dict[int, np.ndarray] = {}

    def mask(obj: Obj) -> np.ndarray:
        if id(obj) not in masks:
            masks[id(obj)] = polygon_mask(obj.coords, width, height)
        return masks[id(obj)]

    out = np.zeros((len(preds), len(gts)))
    for i, p in enumerate(preds):
        for j, g in enumerate(gts):
            if p.kind is None or p.kind != g.kind:
                continue
            if p.kind == 'bbox_2d':
                out[i, j] = box_iou(p.coords, g.coords)
            elif p.kind == 'poly':
                out[i, j] = mask_iou(mask(p), mask(g))
            else:
                out[i, j] = line_similarity(p.coords, g.coords, width, height)
    return out
