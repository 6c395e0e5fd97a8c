"""Which ms-swift model type a config trains, before any model loads (it decides the coordinate convention)."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

# Hub ids of the families whose conventions differ, when no local config.json says.
HUB_PATTERNS = ((re.compile(r'qwen2\.5-vl', re.I), 'qwen2_5_vl'), (re.compile(r'qwen3-vl', re.I), 'qwen3_vl'),
                (re.compile(r'qwen2-vl', re.I), 'qwen2_vl'))


def checkpoint_config(path: str | Path) -> dict[str, Any] | None:
    """A local checkpoint's `config.json`, or None (a hub id, a missing or unreadable file)."""
    try:
        config = json.loads((Path(path) / 'config.json').read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return None
    return config if isinstance(config, dict) else None


def model_type_of(model: dict[str, Any]) -> str | None:
    """`model.model_type`, else the `model_type` of a local checkpoint's config.json, else one read from a hub id."""
    if model.get('model_type'):
        return model['model_type']
    path = str(model.get('model') or '')
    if (config := checkpoint_config(path)) is not None:
        return config.get('model_type')
    return next((name for pattern, name in HUB_PATTERNS if pattern.search(path)), None)
