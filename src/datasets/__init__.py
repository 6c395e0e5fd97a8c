"""JSONL records -> ms-swift template inputs -> encoded samples."""
from .dense_caption import DenseCaptionDataset
from .records import RecordError, to_template_inputs

__all__ = ['DenseCaptionDataset', 'RecordError', 'to_template_inputs']
