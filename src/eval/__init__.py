"""Evaluation of a trained checkpoint: generation, dense / summary metrics, and pictures (``python -m src.eval``)."""
