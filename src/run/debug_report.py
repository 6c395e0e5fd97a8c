"""What ``--debug`` prints: one collated batch and the trainable parameters per component."""
from __future__ import annotations

from collections import OrderedDict
from typing import Any

import torch

IGNORE_INDEX = -100


def _prefixes(value: str | list[str] | None) -> list[str]:
    if not value:
        return []
    return [value] if isinstance(value, str) else list(value)


def component_of(name: str, model_arch: Any) -> str:
    """ViT / aligner / LLM for a parameter name, by ms-swift's module keys (the aligner sits inside the ViT)."""
    dotted = f'.{name}.'
    for component, prefixes in (('aligner', model_arch.aligner), ('vit', model_arch.vision_tower),
                                ('llm', model_arch.language_model)):
        if any(f'.{p}.' in dotted for p in _prefixes(prefixes)):
            return component
    return 'other'


def trainable_summary(model: torch.nn.Module, model_arch: Any) -> str:
    """A table of trainable / total parameters for ViT, aligner, LLM (and anything else, e.g. LoRA-free heads)."""
    counts: dict[str, list[int]] = OrderedDict((c, [0, 0]) for c in ('vit', 'aligner', 'llm', 'other'))
    for name, param in model.named_parameters():
        entry = counts[component_of(name, model_arch)]
        entry[1] += param.numel()
        if param.requires_grad:
            entry[0] += param.numel()
    rows = ['component  trainable        total  share']
    for component, (trainable, total) in counts.items():
        if total:
            rows.append(f'{component:<9} {trainable:>10,} {total:>12,} {100 * trainable / total:>5.1f}%')
    return '\n'.join(rows)


def _label_spans(labels: torch.Tensor) -> list[tuple[int, int]]:
    spans, start = [], None
    for i, value in enumerate(labels.tolist() + [IGNORE_INDEX]):
        if value != IGNORE_INDEX and start is None:
            start = i
        elif value == IGNORE_INDEX and start is not None:
            spans.append((start, i))
            start = None
    return spans


def describe_batch(batch: dict[str, Any], tokenizer: Any, image_token_id: int, merge_size: int) -> str:
    """Shapes, image tokens per sample against ``image_grid_thw``, and the decoded spans that carry loss."""
    lines = ['batch tensors:']
    for key, value in batch.items():
        if isinstance(value, torch.Tensor):
            lines.append(f'  {key:<20} {tuple(value.shape)} {str(value.dtype).replace("torch.", "")}')
    input_ids = batch['input_ids']
    labels = batch['labels'] if batch.get('labels') is not None else torch.full_like(input_ids, IGNORE_INDEX)
    grids = batch.get('image_grid_thw')
    expected = (grids.prod(-1) // merge_size**2).tolist() if grids is not None else []
    lines.append('image tokens (input_ids == image_pad) vs image_grid_thw.prod() / merge_size^2:')
    image_idx = 0
    for row in range(input_ids.shape[0]):
        found = int((input_ids[row] == image_token_id).sum())
        # Images are concatenated across the batch in order; take as many as this row's tokens account for.
        row_expected, total = [], 0
        while image_idx < len(expected) and total < found:
            row_expected.append(expected[image_idx])
            total += expected[image_idx]
            image_idx += 1
        status = 'ok' if total == found else 'MISMATCH'
        lines.append(f'  sample {row}: {found} image tokens; per image {row_expected} -> {total} ({status})')
    if batch.get('video_grid_thw') is not None:
        lines.append(f'video_grid_thw (frames / temporal patch, h, w per video): {batch["video_grid_thw"].tolist()}')
    lines.append('label spans (the text the loss is computed on):')
    if not any(_label_spans(labels[row]) for row in range(labels.shape[0])):
        lines.append('  none: no token of this batch carries loss')
    for row in range(labels.shape[0]):
        for start, end in _label_spans(labels[row]):
            text = tokenizer.decode(labels[row, start:end].tolist())
            lines.append(f'  sample {row} [{start}:{end}] {text!r}')
    return '\n'.join(lines)
