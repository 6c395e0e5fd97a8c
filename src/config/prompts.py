"""User prompts per training mode (`custom.prompts`, `custom.dataset_prompts`, a fusion source's `prompts`)."""
from __future__ import annotations

from typing import Any

MODES = ('dense', 'summary')
"""`custom.mode`: how a geometry record becomes an answer (objects with geometry, or the record's summary)."""


def prompt_problems(prompts: Any) -> list[str]:
    """Problems of a prompt mapping: it is keyed by mode, and each prompt is text."""
    if not isinstance(prompts, dict):
        return [f'must be a mapping from mode ({", ".join(MODES)}) to prompt text']
    return [f'`{mode}`: prompts are keyed by mode, one of {", ".join(MODES)}' if mode not in MODES
            else f'`{mode}`: must be text' for mode, text in prompts.items()
            if mode not in MODES or not isinstance(text, str)]
