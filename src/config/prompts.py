"""User prompts per training mode (`custom.prompts`, `custom.dataset_prompts`, a fusion source's `prompts`)."""
from __future__ import annotations

from typing import Any

from .reserved_text import reserved_text_problem

MODES = ('dense', 'summary')
"""`custom.mode`: how a geometry record becomes an answer (objects with geometry, or the record's summary)."""


def prompt_problems(prompts: Any) -> list[tuple[tuple[str, ...], str]]:
    """Problems of a prompt mapping, each with the key it is about: it is keyed by mode, and each prompt is text
    without template markup."""
    if not isinstance(prompts, dict):
        return [((), f'must be a mapping from mode ({", ".join(MODES)}) to prompt text')]
    problems = []
    for mode, text in prompts.items():
        if mode not in MODES:
            problems.append(((str(mode), ), f'prompts are keyed by mode, one of {", ".join(MODES)}'))
        elif not isinstance(text, str):
            problems.append(((mode, ), 'must be text'))
        elif (problem := reserved_text_problem(text)) is not None:
            problems.append(((mode, ), problem))
    return problems
