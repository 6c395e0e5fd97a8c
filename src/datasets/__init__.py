"""JSONL records -> ms-swift template inputs -> encoded samples.

Names are imported on first use, so tools that only read and write JSONL (the validator, the mixture builder) do not
pay for importing torch.
"""
from __future__ import annotations

from ..lazy_exports import lazy_getattr

_EXPORTS = {
    'BuildSettings': '.builders',
    'to_template_inputs': '.builders.chat',
    'RecordError': '.contract',
    'record_problems': '.contract',
    'DenseCaptionDataset': '.dense_caption',
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
