"""`custom.visual_kd`: which visual components GKD distils, with what weight and distance (parsed once, here).

    custom:
      visual_kd:
        enabled: true                                    # false turns every component off (the playbook's switch)
        aligner: {enabled: true, weight: 1.0, distance: mse}
        deepstack: {weight: 0.5, distance: cosine}

The loss itself is ``src/trainers/visual_kd.py``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .bounds import NON_NEGATIVE

COMPONENTS = ('vit', 'aligner', 'deepstack')
DISTANCES = ('mse', 'cosine')
WEIGHT = NON_NEGATIVE


@dataclass(frozen=True)
class ComponentKD:
    """One distilled component (`custom.visual_kd.<component>`)."""

    weight: float = 1.0
    distance: str = 'mse'


def parse_visual_kd(spec: Any) -> tuple[dict[str, ComponentKD], list[tuple[tuple[str, ...], str]]]:
    """`custom.visual_kd` -> (enabled components, problems with the key path each is about)."""
    if not spec:
        return {}, []
    if not isinstance(spec, dict):
        return {}, [((), f'must be a mapping of component ({", ".join(COMPONENTS)}) to {{enabled, weight, distance}}')]
    enabled, problems = {}, []
    switch = spec.get('enabled', True)
    if not isinstance(switch, bool):
        problems.append((('enabled', ), f'must be true or false, got {switch!r}'))
    for name, entry in spec.items():
        if name == 'enabled':
            continue
        if name not in COMPONENTS:
            problems.append(((str(name), ), f'unknown component; valid: enabled, {", ".join(COMPONENTS)}'))
            continue
        if not isinstance(entry, dict):
            problems.append(((name, ), 'must be a mapping with `enabled`, `weight`, `distance`'))
            continue
        problems += [((name, str(k)), 'unknown key; valid: enabled, weight, distance') for k in entry
                     if k not in ('enabled', 'weight', 'distance')]
        weight, distance = entry.get('weight', 1.0), entry.get('distance', 'mse')
        if (problem := WEIGHT.problem(weight)) is not None:
            problems.append(((name, 'weight'), problem))
        if distance not in DISTANCES:
            problems.append(((name, 'distance'), f'unknown distance {distance!r}; valid: {", ".join(DISTANCES)}'))
        if not isinstance(entry.get('enabled', True), bool):
            problems.append(((name, 'enabled'), 'must be true or false'))
        elif entry.get('enabled', True) and not problems:
            enabled[name] = ComponentKD(float(weight), distance)
    return (enabled if not problems and switch is True else {}), problems
