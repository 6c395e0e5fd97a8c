"""Dataset fusion: one training set from several JSONL sources, mixed online per epoch or offline into one file.

Names are imported on first use: the offline builder needs neither torch nor ms-swift.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    'FusionConfig': '.config',
    'FusionSource': '.config',
    'load_fusion_config': '.config',
    'FusionDataset': '.online',
    'FusionEvalDataset': '.online',
    'epoch_schedule': '.schedule',
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
