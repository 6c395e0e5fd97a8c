"""Per-dataset telemetry: loss, token accuracy and supervised tokens of every dataset in the batch.

The collator (SFT) or the micro-batch builder (GKD) turns each sample's dataset name (its fusion source, or the record's
`dataset` field) into a ``dataset_labels`` batch field; ``compute_loss`` takes it out before the model sees the batch
and, after ms-swift's own loss, adds every row's summed token loss, correct tokens and token count to that dataset's
running sums. At each log step the sums are reduced across ranks and logged as ``<name>_loss`` (token mean),
``<name>_token_acc`` and ``<name>_tokens`` (``data_<name>_...`` for a dataset named like a split: ``metric_name``).
Sums, not means, are kept so gradient-accumulation micro-batches and ranks weigh by tokens: with ``logging_steps: 1`` on
one process, the token-weighted mean of the ``<name>_loss`` values is the logged ``loss``. Nothing here changes the loss
or the gradients.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.distributed as dist
import torch.nn.functional as F
from swift.trainers import Seq2SeqTrainer

from ..config.fusion import RESERVED_NAMES
from ..datasets.dense_caption import DATASET_LABEL, DROPPED_OBJECTS
from ..datasets.pixels import with_processor_rows
from .engines import EngineMixin
from .stand_in_image import with_stand_in

DATASET_LABELS = 'dataset_labels'
"""Batch field: the dataset name of each row (None for an unnamed record)."""
DROPPED = 'dropped_objects'
"""Batch field and metric: objects augmentation removed because they left the image."""
STATS = ('loss_sum', 'tokens', 'correct')
_DROPPED_SUM = '/dropped'  # key of the dropped-object count among the per-dataset sums ('/' is in no source name)


SPLIT_WORDS = ('train', 'eval', 'test')


def metric_name(name: str) -> str:
    """The name a dataset's keys are logged under: its own, but ``data_<name>`` for a dataset named like a split or
    starting with one (`eval`, `eval_set`, `test_a`, `train`), or whose `<name>_loss` / `<name>_token_acc` is a
    trainer's own metric (`sft`, `llm_kd`, `vision_kd`: the GKD monitor's terms; `token`, `aux`: ms-swift's).
    transformers files a key starting with `eval_` or `test_` under evaluation or test, so a training-time
    `eval_loss` of a dataset called `eval` would have landed in the evaluation curve, `train_loss` is the trainer's
    own end-of-run loss, and a record whose `dataset` was `llm_kd` logged its cross-entropy over the KD term."""
    split_like = name in SPLIT_WORDS or name.startswith(tuple(f'{w}_' for w in SPLIT_WORDS))
    return f'data_{name}' if split_like or name in RESERVED_NAMES else name


class TelemetryCollator:
    """Wraps the template's collator; moves the per-sample telemetry fields into batch fields."""

    def __init__(self, collate: Callable[[list[dict[str, Any]]], dict[str, Any]], template: Any = None):
        self.collate = collate
        self.template = template

    def __call__(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        names = [row.pop(DATASET_LABEL, None) for row in rows]
        dropped = [row.pop(DROPPED_OBJECTS) for row in rows if DROPPED_OBJECTS in row]
        # After the names: a stand-in row (weights sharded, no image in the batch) has none and counts nowhere.
        batch = with_processor_rows(self.template, self.collate(with_stand_in(self.template, rows)))
        if any(names):
            batch[DATASET_LABELS] = names
        if dropped:
            batch[DROPPED] = torch.tensor(sum(dropped), dtype=torch.float32)
        return batch


@torch.no_grad()
def row_token_stats(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """(B, 3): summed token cross-entropy, supervised tokens and correctly predicted tokens of each row.

    Position t of ``logits`` predicts token t + 1 of ``labels`` (as in the model's own loss); only the supervised
    positions are gathered, so the float32 copy is (tokens, vocab), not (B, T, vocab).
    """
    target = labels[:, 1:]
    mask = target != -100
    picked = logits[:, :-1][mask].float()  # (N, V)
    wanted = target[mask]
    rows = mask.nonzero()[:, 0]
    stats = torch.zeros(labels.shape[0], len(STATS), device=logits.device)
    stats[:, 0].index_add_(0, rows, F.cross_entropy(picked, wanted, reduction='none'))
    stats[:, 1] = mask.sum(dim=1)
    stats[:, 2].index_add_(0, rows, (picked.argmax(dim=-1) == wanted).float())
    return stats


def reduce_sums(sums: dict[str, torch.Tensor], device: torch.device) -> dict[str, torch.Tensor]:
    """Sum each name's statistics over all ranks; every rank gets the same names (a rank may not have seen one)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return sums
    gathered: list[list[str] | None] = [None] * dist.get_world_size()
    dist.all_gather_object(gathered, sorted(sums))
    names = sorted(set().union(*gathered))
    if not names:
        return {}
    empty = torch.zeros(len(STATS), device=device)
    stacked = torch.stack([sums.get(name, empty).to(device) for name in names])
    dist.all_reduce(stacked)
    return dict(zip(names, stacked))


class DatasetTelemetryMixin:
    """Adds per-dataset metrics to an ms-swift trainer; put it before the trainer class in the bases.

    The batch carries ``DATASET_LABELS`` (SFT: ``TelemetryCollator``; GKD: its micro-batch builder)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        names = inputs.pop(DATASET_LABELS, None)
        dropped = inputs.pop(DROPPED, None)
        labels = inputs.get('labels')  # ms-swift may pop it; already aligned with `logits_to_keep`
        loss, outputs = super().compute_loss(model, inputs, return_outputs=True, num_items_in_batch=num_items_in_batch)
        labels = self._supervised_labels(inputs, labels)
        mode = 'train' if self.model.training else 'eval'
        sums = self._telemetry_sums()[mode]
        logits = getattr(outputs, 'logits', None)
        if names is not None and labels is not None and logits is not None:
            stats = row_token_stats(logits, labels)
            for name in set(names) - {None}:
                rows = torch.tensor([i for i, n in enumerate(names) if n == name], device=stats.device)
                sums[name] = sums.get(name, 0) + stats[rows].sum(dim=0)
        if dropped is not None and mode == 'train':
            sums[_DROPPED_SUM] = sums.get(_DROPPED_SUM, 0) + F.pad(dropped.detach().reshape(1), (0, len(STATS) - 1))
        return (loss, outputs) if return_outputs else loss

    def _supervised_labels(self, inputs: dict[str, Any], labels: torch.Tensor | None) -> torch.Tensor | None:
        """The labels aligned with the logits the loss returned (``labels``: the batch's, read before the loss)."""
        return labels

    def log(self, logs: dict[str, float], *args, **kwargs) -> None:
        mode = 'train' if self.model.training else 'eval'
        prefix = 'eval_' if mode == 'eval' else ''
        sums = self._telemetry_sums()
        reduced = reduce_sums(sums[mode], self.args.device)
        sums[mode] = {}
        if _DROPPED_SUM in reduced:
            logs[DROPPED] = int(reduced.pop(_DROPPED_SUM)[0].item())
        for name, (loss_sum, tokens, correct) in sorted(reduced.items()):
            name = metric_name(name)
            if tokens > 0:
                logs[f'{prefix}{name}_loss'] = round((loss_sum / tokens).item(), 8)
                logs[f'{prefix}{name}_token_acc'] = round((correct / tokens).item(), 8)
            logs[f'{prefix}{name}_tokens'] = int(tokens.item())
        return super().log(logs, *args, **kwargs)

    def _telemetry_sums(self) -> dict[str, dict[str, torch.Tensor]]:
        if not hasattr(self, '_telemetry'):
            self._telemetry = {'train': {}, 'eval': {}}
        return self._telemetry


class TelemetrySeq2SeqTrainer(EngineMixin, DatasetTelemetryMixin, Seq2SeqTrainer):
    """ms-swift's SFT trainer with per-dataset telemetry."""

    def _get_data_collator(self, args, template):
        return TelemetryCollator(super()._get_data_collator(args, template), template)
