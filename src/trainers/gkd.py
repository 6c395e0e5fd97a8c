"""GKD with the project's additions: a weight on the logits KD term, visual feature KD, the KL+CE monitor, per-dataset
telemetry, and a loss that does not depend on how the global batch is split.

ms-swift's ``GKDTrainer`` does the rollout side (dataset or on-policy completions, encoding, the frozen teacher);
this subclass replaces only ``compute_loss`` (which of ms-swift's branches it keeps and which it refuses:
``src/swift_seams.py``) so that the loss is

    loss = sft_alpha * sft_loss + llm_kd_loss + vision_kd_loss
    sft_loss       = token cross-entropy of the student on the labels
    llm_kd_loss    = llm_kd_weight * JSD_beta(student, teacher)      (ms-swift's generalised JSD, per token)
    vision_kd_loss = Σ_c weight_c * distance_c(student features, teacher features)

Each term is a mean over the whole global batch of an optimizer step (all processes, all accumulation micro-batches):
``sft_loss`` and ``llm_kd_loss`` over its supervised tokens, ``vision_kd_loss`` over its visual feature vectors. A
micro-batch adds its share (its own mean x its count / the step's global count), so 1 process x batch 4, 2 x 2 and
1 x 2 x accumulation 2 give the same step (tests/test_scale_invariance.py). ms-swift's own loss is a mean per
micro-batch, which differs between these splits.

``sft_loss`` is left out of the total for on-policy (student-generated) batches, as in ms-swift. Evaluation runs the
teacher too (no sampling) so that ``eval/llm_kd_loss`` and ``eval/vision_kd_loss`` are logged, but its loss is
``sft_loss``. With ``custom.trainer_variant: gkd_monitor`` the three terms and ``token_acc`` are logged next to
``loss``; ms-swift's metric objects reduce them across ranks, so every rank logs (and picks checkpoints on) the same
values. Only a local teacher is supported: visual KD needs the teacher's features.
"""
from __future__ import annotations

import contextlib
from typing import Any

import torch
import torch.distributed as dist
from swift.rlhf_trainers import GKDTrainer
from swift.rlhf_trainers.gkd_loss import DataSource, TeacherOutput
from swift.trainers import disable_gradient_checkpointing

from ..config.project import GKDSettings
from ..datasets.dense_caption import DATASET_LABEL
from ..swift_seams import NoResample
from .engines import EngineMixin
from .telemetry import DATASET_LABELS, DatasetTelemetryMixin
from .visual_kd import VisualKDLoss, capture

STEP_COUNTS = 'step_counts'
"""Micro-batch field: (supervised tokens, visual feature vectors) of the whole optimizer step, and its share factor."""


def supervised_tokens(labels: torch.Tensor) -> torch.Tensor:
    """Positions whose next token is supervised: what the token cross-entropy and ms-swift's JSD average over."""
    return (labels[:, 1:] != -100).sum()


def visual_vectors(inputs: dict[str, Any]) -> torch.Tensor:
    """Patches of the batch's images and videos (t x h x w of each grid); every distilled component's feature count
    is a fixed multiple of it, so a micro-batch's share of the step's features is its share of these."""
    total = torch.zeros((), dtype=torch.long)
    for key in ('image_grid_thw', 'video_grid_thw'):
        grid = inputs.get(key)
        if grid is not None:
            total = total + grid.prod(dim=-1).sum().cpu()
    return total


def step_counts(batches: list[dict[str, Any]], group: int) -> list[torch.Tensor]:
    """For each micro-batch, (tokens, feature vectors) summed over its optimizer step (``group`` consecutive
    micro-batches) on every process."""
    local = torch.stack([torch.stack([supervised_tokens(b['model_inputs']['labels']).cpu(),
                                      visual_vectors(b['model_inputs'])]) for b in batches]).double()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        device = batches[0]['model_inputs']['labels'].device
        local = local.to(device)
        dist.all_reduce(local)
        local = local.cpu()
    steps = local.split(group)
    return [step.sum(dim=0) for step in steps for _ in range(len(step))]


class GKDLossTrainer(NoResample, GKDTrainer):
    """ms-swift's ``GKDTrainer`` with ``rlhf.llm_kd_weight``, ``custom.visual_kd``, the monitor metrics and a loss
    normalised over the optimizer step's global batch."""

    # `compute_loss` divides by the step's global counts itself; transformers must not divide by the accumulation.
    loss_is_scaled_for_ga = True

    def __init__(self, *args, gkd: GKDSettings = GKDSettings(), **kwargs):
        super().__init__(*args, **kwargs)
        self.llm_kd_weight = gkd.llm_kd_weight
        self.visual_kd = VisualKDLoss(gkd.visual_kd)
        self.monitor = gkd.monitor

    def _prepare_batch_inputs(self, samples):
        """ms-swift's micro-batches, each with its samples' dataset names and its optimizer step's global counts."""
        batches = super()._prepare_batch_inputs(samples)
        if self.template.sequence_parallel_size == 1:  # ms-swift's split is local only then
            for batch, chunk in zip(batches, self.split_by_mini_batches(samples)):
                names = [s.extra.get(DATASET_LABEL) for s in chunk]
                if any(names):
                    batch[DATASET_LABELS] = names
        group = self.args.gradient_accumulation_steps if self.model.training else 1
        world = self.accelerator.num_processes
        for batch, counts in zip(batches, step_counts(batches, group)):
            # share: how many (process, micro-batch) pairs of the step log a term; see `_log_terms`.
            batch[STEP_COUNTS] = (counts[0].item(), counts[1].item(), world * group)
        return batches

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        model_inputs, teacher_inputs = inputs['model_inputs'], inputs['teacher_model_inputs']
        step_tokens, step_vectors, share = inputs[STEP_COUNTS]
        on_policy = inputs['gkd_batch'].data_source == DataSource.STUDENT
        token_share = supervised_tokens(model_inputs['labels']).item() / max(step_tokens, 1)
        vector_share = visual_vectors(model_inputs).item() / max(step_vectors, 1)
        if self.get_use_logits_to_keep(self.template.sequence_parallel_size == 1):
            self.prepare_logits_to_keep(model_inputs)
            self.prepare_logits_to_keep(teacher_inputs)
        components = list(self.visual_kd.components)
        with capture(model, components) as student_features:
            # the student's summed token cross-entropy over the step's token count: its share of the step's mean
            outputs = model(**model_inputs, num_items_in_batch=max(step_tokens, 1))
        terms = {'sft_loss': outputs.loss}
        teacher_logits, teacher_features = self._teacher_forward(model, teacher_inputs, components)
        if self.llm_kd_weight > 0:
            teacher_out = TeacherOutput(full_logits=teacher_logits, labels=teacher_inputs['labels'])
            jsd = self._compute_jsd_loss(outputs.logits, teacher_out, model_inputs['labels'])
            terms['llm_kd_loss'] = self.llm_kd_weight * jsd * token_share
        if components:
            vision = self.visual_kd(student_features, teacher_features)
            terms['vision_kd_loss'] = vision * vector_share if vision is not None else outputs.loss.new_zeros(())
        if not self.model.training:  # evaluation: the student's cross-entropy
            loss = terms['sft_loss']
        else:
            loss = sum(v for k, v in terms.items() if k != 'sft_loss')
            if self.args.sft_alpha > 0 and not on_policy:
                loss = loss + self.args.sft_alpha * terms['sft_loss']
        if self.monitor:
            self._log_terms(terms, share)
            self._compute_acc(outputs, model_inputs['labels'])
        # Data parallelism averages gradients (and transformers the logged loss) over processes: undo it, so the
        # step's loss is the sum of its shares.
        loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss

    def _log_terms(self, terms: dict[str, torch.Tensor], share: int) -> None:
        """ms-swift's metrics log the mean of the values given to them; each (process, micro-batch) of a step gives
        its share x ``share``, so the mean is the step's term, and over several steps the mean of the steps'."""
        metrics = self.custom_metrics['train' if self.model.training else 'eval']
        for name, value in terms.items():
            metrics[name].update(value.detach() * share)

    def _teacher_forward(self, model, inputs, components):
        """(logits, visual features) of the frozen teacher on the student's batch, without gradients.

        When the teacher is the student's own base checkpoint, ms-swift loads no second model and the teacher is the
        student with its LoRA adapter switched off.
        """
        teacher, adapter_off = self.teacher_model, contextlib.nullcontext()
        if teacher is None:
            teacher = model
            if self._teacher_use_disable_adapter:
                adapter_off = self.accelerator.unwrap_model(model).disable_adapter()
        forward = {k: v for k, v in inputs.items() if k != 'labels'}
        with torch.no_grad(), adapter_off, capture(teacher, components) as features, \
                disable_gradient_checkpointing(teacher, self.args.gradient_checkpointing_kwargs):
            return teacher(**forward).logits, features


class ProjectGKDTrainer(EngineMixin, DatasetTelemetryMixin, GKDLossTrainer):
    """The project's GKD trainer: ``GKDLossTrainer`` with per-dataset telemetry around its loss."""

    def _supervised_labels(self, inputs, labels):
        return inputs['model_inputs']['labels']  # after `logits_to_keep` trimmed them, as the logits are
