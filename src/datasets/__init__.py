"""JSONL records -> ms-swift template inputs -> encoded samples."""
from .builders import BuildSettings
from .builders.chat import to_template_inputs
from .contract import RecordError, record_problems
from .dense_caption import DenseCaptionDataset

__all__ = ['BuildSettings', 'DenseCaptionDataset', 'RecordError', 'record_problems', 'to_template_inputs']
