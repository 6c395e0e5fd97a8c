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
from typing import Iterator

import torch
import torch.nn.functional as F
from torch import nn

from ..config.visual_kd import ComponentKD

_BLOCK = re.compile(r'(?:^|\.)visual\.blocks\.(\d+)$')
_PATTERNS = {
    'aligner': re.compile(r'(?:^|\.)visual\.merger$'),
    'deepstack': re.compile(r'(?:^|\.)visual\.deepstack_merger_list\.\d+$'),
}


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
