"""Dataset fusion: one training set from several JSONL sources, mixed online per epoch or offline into one file.

Names are imported on first use: the offline builder needs neither torch nor ms-swift.
"""
from __future__ import annotations

from ...lazy_exports import lazy_getattr

_EXPORTS = {
    'FusionDataset': '.online',
    'FusionEvalDataset': '.online',
    'epoch_schedule': '.schedule',
}
__all__ = list(_EXPORTS)
__getattr__ = lazy_getattr(__name__, _EXPORTS)
