"""Visual feature distillation: where the features come from, how they are compared, and the loss module.

Three components of the Qwen-VL vision tower can be distilled, each with its own weight and distance:

- `vit`: the output of the last ViT block, before the merger (patch features);
- `aligner`: the merger's output (the visual tokens the LLM reads);
- `deepstack`: the outputs of the DeepStack mergers (Qwen3-VL only), averaged over the mergers.

Features are captured with forward hooks during the student's and the teacher's forward on the same batch. The
teacher runs under `no_grad`, so the gradient of the term reaches the student only. A batch without images
(`pixel_values`) fires no hook and the term is zero.
"""
from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from typing import Any, Iterator

import torch
import torch.nn.functional as F
from torch import nn

COMPONENTS = ('vit', 'aligner', 'deepstack')
DISTANCES = ('mse', 'cosine')
_BLOCK = re.compile(r'(?:^|\.)visual\.blocks\.(\d+)$')
_PATTERNS = {
    'aligner': re.compile(r'(?:^|\.)visual\.merger$'),
    'deepstack': re.compile(r'(?:^|\.)visual\.deepstack_merger_list\.\d+$'),
}


@dataclass(frozen=True)
class ComponentKD:
    """One distilled component (`custom.visual_kd.<component>`)."""

    weight: float = 1.0
    distance: str = 'mse'


def parse_visual_kd(spec: Any) -> tuple[dict[str, ComponentKD], list[str]]:
    """`custom.visual_kd` -> (enabled components, problems naming the component and key)."""
    if not spec:
        return {}, []
    if not isinstance(spec, dict):
        return {}, [f'must be a mapping of component ({", ".join(COMPONENTS)}) to {{enabled, weight, distance}}']
    enabled, problems = {}, []
    for name, entry in spec.items():
        if name not in COMPONENTS:
            problems.append(f'unknown component `{name}`; valid: {", ".join(COMPONENTS)}')
            continue
        if not isinstance(entry, dict):
            problems.append(f'`{name}`: must be a mapping with `enabled`, `weight`, `distance`')
            continue
        problems += [f'`{name}`: unknown key `{k}`; valid: enabled, weight, distance' for k in entry
                     if k not in ('enabled', 'weight', 'distance')]
        weight, distance = entry.get('weight', 1.0), entry.get('distance', 'mse')
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight < 0:
            problems.append(f'`{name}.weight`: must be a number >= 0, got {weight!r}')
        if distance not in DISTANCES:
            problems.append(f'`{name}.distance`: unknown distance {distance!r}; valid: {", ".join(DISTANCES)}')
        if not isinstance(entry.get('enabled', True), bool):
            problems.append(f'`{name}.enabled`: must be true or false')
        elif entry.get('enabled', True) and not problems:
            enabled[name] = ComponentKD(float(weight), distance)
    return (enabled if not problems else {}), problems


def feature_distance(student: torch.Tensor, teacher: torch.Tensor, distance: str) -> torch.Tensor:
    """Mean squared error, or mean (1 - cosine similarity) over feature vectors, in float32."""
    student, teacher = student.float(), teacher.float()
    if distance == 'mse':
        return F.mse_loss(student, teacher)
    return (1 - F.cosine_similarity(student, teacher, dim=-1)).mean()


def component_modules(model: nn.Module) -> dict[str, list[nn.Module]]:
    """The modules whose outputs are each component's features (empty list: the model lacks the component)."""
    named = dict(model.named_modules())
    blocks = sorted(((int(m.group(1)), name) for name in named if (m := _BLOCK.search(name))), reverse=True)
    found = {'vit': [named[blocks[0][1]]] if blocks else []}
    for component, pattern in _PATTERNS.items():
        found[component] = [module for name, module in named.items() if pattern.search(name)]
    return found


@contextlib.contextmanager
def capture(model: nn.Module, components: list[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Record the outputs of ``components``' modules during the forward passes inside the block."""
    features: dict[str, list[torch.Tensor]] = {c: [] for c in components}
    modules = component_modules(model)
    handles = []
    for component in components:
        for module in modules[component]:
            handles.append(module.register_forward_hook(
                lambda _m, _i, output, _c=component: features[_c].append(
                    output[0] if isinstance(output, tuple) else output)))
    try:
        yield features
    finally:
        for handle in handles:
            handle.remove()


class VisualKDLoss(nn.Module):
    """Σ_c weight_c · mean_i distance_c(student_i, teacher_i) over the captured features of each component."""

    def __init__(self, components: dict[str, ComponentKD]):
        super().__init__()
        self.components = components

    def forward(self, student: dict[str, list[torch.Tensor]], teacher: dict[str, list[torch.Tensor]]) -> torch.Tensor:
        total = None
        for name, spec in self.components.items():
            pairs = list(zip(student.get(name, []), teacher.get(name, [])))
            if not pairs:  # no images in the batch
                continue
            term = spec.weight * torch.stack([feature_distance(s, t, spec.distance) for s, t in pairs]).mean()
            total = term if total is None else total + term
        return total
