"""Geometry-aware augmentation: image and every bbox / poly / line move through the same affine map."""
from .pipeline import Augmenter, augmenter_for, sample_rng

__all__ = ['Augmenter', 'augmenter_for', 'sample_rng']
