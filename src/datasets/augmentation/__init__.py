"""Geometry-aware augmentation: image and every bbox / poly / line move through the same affine map."""
from .pipeline import Augmenter, parse_augmentation, sample_rng

__all__ = ['Augmenter', 'parse_augmentation', 'sample_rng']
