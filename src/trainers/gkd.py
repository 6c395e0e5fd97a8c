"""GKD with the project's additions: a weight on the logits KD term, visual feature KD, and the KL+CE monitor.

ms-swift's ``GKDTrainer`` does the rollout side (dataset or on-policy completions, encoding, the frozen teacher);
this subclass replaces only ``compute_loss`` (which of ms-swift's branches it keeps and which it refuses:
``src/swift_seams.py``) so that the loss is

    loss = sft_alpha * sft_loss + llm_kd_loss + vision_kd_loss
    llm_kd_loss    = llm_kd_weight * JSD_beta(student, teacher)      (ms-swift's generalised JSD, per token)
    vision_kd_loss = Σ_c weight_c * distance_c(student features, teacher features)

``sft_loss`` is the student's token cross-entropy on the batch's labels; as in ms-swift it is left out of the total
for on-policy (student-generated) batches. Evaluation runs no teacher: its loss is ``sft_loss``. With
``custom.trainer_variant: gkd_monitor`` the three terms and ``token_acc`` are logged next to ``loss``; ms-swift's
metric objects reduce them across ranks as sums and counts, so every rank logs (and picks checkpoints on) the same
values. Only a local teacher is supported: visual KD needs the teacher's features.
"""
from __future__ import annotations

import contextlib

import torch
from swift.rlhf_trainers import GKDTrainer
from swift.rlhf_trainers.gkd_loss import DataSource, TeacherOutput
from swift.trainers import disable_gradient_checkpointing

from ..config.rlhf import GKDSettings
from ..swift_seams import NoResample
from .visual_kd import VisualKDLoss, capture


class ProjectGKDTrainer(NoResample, GKDTrainer):
    """ms-swift's ``GKDTrainer`` with ``rlhf.llm_kd_weight``, ``custom.visual_kd`` and the monitor metrics."""

    def __init__(self, *args, gkd: GKDSettings = GKDSettings(), **kwargs):
        super().__init__(*args, **kwargs)
        self.llm_kd_weight = gkd.llm_kd_weight
        self.visual_kd = VisualKDLoss(gkd.visual_kd)
        self.monitor = gkd.monitor

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        model_inputs, teacher_inputs = inputs['model_inputs'], inputs['teacher_model_inputs']
        on_policy = inputs['gkd_batch'].data_source == DataSource.STUDENT
        if self.get_use_logits_to_keep(self.template.sequence_parallel_size == 1):
            self.prepare_logits_to_keep(model_inputs)
            self.prepare_logits_to_keep(teacher_inputs)
        training = self.model.training
        components = list(self.visual_kd.components) if training else []
        with capture(model, components) as student_features:
            outputs = model(**model_inputs)  # with labels: the model's own token cross-entropy
        sft_loss = outputs.loss
        terms = {'sft_loss': sft_loss}
        if not training:  # evaluation: the student's cross-entropy only, no teacher
            loss = sft_loss
        else:
            loss = self.args.sft_alpha * sft_loss if self.args.sft_alpha > 0 and not on_policy else 0
            teacher_logits, teacher_features = self._teacher_forward(model, teacher_inputs, components)
            if self.llm_kd_weight > 0:
                teacher_out = TeacherOutput(full_logits=teacher_logits, labels=teacher_inputs['labels'])
                terms['llm_kd_loss'] = self.llm_kd_weight * self._compute_jsd_loss(outputs.logits, teacher_out,
                                                                                    model_inputs['labels'])
                loss = loss + terms['llm_kd_loss']
            if components:
                vision = self.visual_kd(student_features, teacher_features)
                terms['vision_kd_loss'] = vision if vision is not None else sft_loss.new_zeros(())
                loss = loss + terms['vision_kd_loss']
        if self.monitor:
            metrics = self.custom_metrics['train' if training else 'eval']
            for name, value in terms.items():
                metrics[name].update(value.detach())
            self._compute_acc(outputs, model_inputs['labels'])
        return (loss, outputs) if return_outputs else loss

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
