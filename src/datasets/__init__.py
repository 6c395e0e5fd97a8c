"""JSONL records -> ms-swift template inputs -> encoded samples.

Names are imported on first use, so tools that only read and write JSONL (the validator, the mixture builder) do not
pay for importing torch.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    'BuildSettings': '.builders',
    'to_template_inputs': '.builders.chat',
    'RecordError': '.contract',
    'record_problems': '.contract',
    'DenseCaptionDataset': '.dense_caption',
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
    return getattr(importlib.import_module(_EXPORTS[name], __name__), name)
