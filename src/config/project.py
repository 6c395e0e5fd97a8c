"""``ProjectConfig``: a validated config, the one object everything after validation reads.

ms-swift's sections stay plain mappings of ms-swift's own fields (handed to its argument classes as they are); the
project's knobs are typed: the ``custom`` and ``deepspeed`` sections as dataclasses, the keys the project adds to
ms-swift's sections as ``RunSettings`` (lifted out of them), the parsed ``custom.augmentation`` / ``video`` /
``visual_kd`` / ``fusion_config``, and ``GKDSettings``. Each is parsed once, by ``validate``.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from . import swift_fields
from .augmentation import AugmentationSpec
from .fusion import FusionConfig
from .model_type import model_type_of
from .schema import LIFTED, SECTIONS, CustomConfig, DeepSpeedConfig, RunSettings
from .video import VideoSampling
from .visual_kd import ComponentKD

MONITOR = 'gkd_monitor'
"""`custom.trainer_variant` that logs each GKD term."""


@dataclass(frozen=True)
class GKDSettings:
    """What the project's GKD trainer adds to ms-swift's, handed to it as one constructor argument."""

    llm_kd_weight: float = RunSettings.llm_kd_weight
    """`rlhf.llm_kd_weight`: the weight of the logits JSD term (0 removes it and its metric)."""
    visual_kd: dict[str, ComponentKD] = field(default_factory=dict)
    """`custom.visual_kd`: the distilled visual components."""
    monitor: bool = False
    """`custom.trainer_variant: gkd_monitor`: log `sft_loss`, `llm_kd_loss`, `vision_kd_loss`, `token_acc`."""


@dataclass
class ProjectConfig:
    """A validated config: ms-swift sections as plain mappings, the project's sections as dataclasses."""

    source: Path
    model: dict[str, Any] = field(default_factory=dict)
    template: dict[str, Any] = field(default_factory=dict)
    tuner: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    training: dict[str, Any] = field(default_factory=dict)
    rlhf: dict[str, Any] = field(default_factory=dict)
    custom: CustomConfig = field(default_factory=CustomConfig)
    deepspeed: DeepSpeedConfig = field(default_factory=DeepSpeedConfig)
    global_max_length: int | None = None
    fusion: FusionConfig | None = None
    """`custom.fusion_config`, loaded and validated."""
    augmentation: AugmentationSpec | None = None
    """`custom.augmentation`, parsed (None: no augmentation)."""
    visual_kd: dict[str, ComponentKD] = field(default_factory=dict)
    """`custom.visual_kd`, parsed: the distilled components that are enabled (GKD)."""
    video: VideoSampling = field(default_factory=VideoSampling)
    """`custom.video`, parsed: how video records are sampled."""
    settings: RunSettings = field(default_factory=RunSettings)
    """The project's keys of the ms-swift sections, lifted out of them (`RunSettings`)."""
    gkd: GKDSettings = field(default_factory=GKDSettings)
    """The project's GKD knobs, as the GKD trainer takes them (built once by validation)."""
    world_size: int = 1
    """Processes of the run: torchrun's `WORLD_SIZE`, read once when the config is validated (1 without torchrun)."""
    warnings: list[str] = field(default_factory=list)
    """What is allowed but probably not meant; the entrypoints print these."""

    @property
    def family_coord_format(self) -> str:
        """The coordinate convention of the base model: `model_pixel` where ms-swift's template for it writes pixels
        (`norm_bbox: none`, Qwen2.5-VL), else `norm1000`."""
        template = swift_fields.template_of(model_type_of(self.model), self.template.get('template'))
        return 'model_pixel' if swift_fields.norm_bbox(template) == 'none' else 'norm1000'

    @property
    def coord_format(self) -> str:
        """`custom.coord_format`, or the base model's convention when it is unset."""
        return self.custom.coord_format or self.family_coord_format

    @property
    def frozen(self) -> dict[str, bool]:
        """Per component (`llm`, `vit`, `aligner`): whether `tuner.freeze_<component>` (or ms-swift's default)
        keeps it frozen."""
        return {name: bool(self.tuner.get(f'freeze_{name}', swift_fields.default('tuner', f'freeze_{name}')))
                for name in ('llm', 'vit', 'aligner')}

    @property
    def seed(self) -> int:
        """`training.seed`, or ms-swift's default: the seed of initialisation, data order and augmentation draws."""
        return self.training.get('seed', swift_fields.default('training', 'seed'))

    @property
    def micro_batch(self) -> int:
        """`training.per_device_train_batch_size`, or ms-swift's default."""
        return self.training.get('per_device_train_batch_size', swift_fields.default('training',
                                                                                     'per_device_train_batch_size'))

    @property
    def gradient_accumulation_steps(self) -> int:
        """Micro-batches per optimizer step: from `training.effective_batch_size` (the global batch) when set, else
        `training.gradient_accumulation_steps` or ms-swift's default."""
        # lifted into `settings` once validation passed; during validation it is still in `training`
        effective = self.settings.effective_batch_size or self.training.get('effective_batch_size')
        if isinstance(effective, int) and effective > 0:
            return max(1, effective // (self.micro_batch * self.world_size))  # 0: refused by the batch check
        return self.training.get('gradient_accumulation_steps') or swift_fields.default(
            'training', 'gradient_accumulation_steps') or 1

    def model_folders(self) -> list[tuple[str, str, bool]]:
        """(path or hub id, opt-in key, opted in) of every model the run loads: the model, the GRPO reference model
        and the GKD teacher."""
        trusted = self.settings.trust_remote_code
        folders = [(self.model.get('model'), 'model.trust_remote_code', trusted),
                   (self.rlhf.get('ref_model'), 'model.trust_remote_code', trusted),
                   (self.rlhf.get('teacher_model'), 'rlhf.teacher_trust_remote_code',
                    self.settings.teacher_trust_remote_code)]
        return [(str(path), key, opted) for path, key, opted in folders if path]

    def trusted_model_folders(self) -> list[str]:
        """The model folders whose own code may run (their opt-in key is true)."""
        return [path for path, _, trusted in self.model_folders() if trusted]

    @property
    def has_validation(self) -> bool:
        """Whether the run evaluates: `custom.val_jsonl`, or fusion sources to evaluate."""
        return bool(self.custom.val_jsonl or (self.fusion is not None and self.fusion.eval_sources))

    def written(self, section: str, key: str) -> Any:
        """The value of `section.key` as the config wrote it, wherever validation keeps it (a lifted key lives in
        ``settings``); None when unset."""
        name = LIFTED.get((section, key))
        return getattr(self.settings, name) if name else getattr(self, section).get(key)

    def rewrite(self, section: str, key: str, value: Any) -> None:
        """Set `section.key` where ``written`` reads it."""
        name = LIFTED.get((section, key))
        if name:
            setattr(self.settings, name, value)
        else:
            getattr(self, section)[key] = value

    def swift_kwargs(self, sections: tuple[str, ...]) -> dict[str, Any]:
        """The ms-swift fields of ``sections`` flattened into keyword arguments (the project's own keys were lifted
        out of them into ``settings``)."""
        kwargs: dict[str, Any] = {}
        for section in sections:
            kwargs.update(getattr(self, section))
        return kwargs

    def to_dict(self) -> dict[str, Any]:
        """The resolved config as YAML-ready data (what `resolved_config.yaml` holds)."""
        out: dict[str, Any] = {'global_max_length': self.global_max_length}
        for section in SECTIONS:
            value = getattr(self, section)
            out[section] = dataclasses.asdict(value) if dataclasses.is_dataclass(value) else dict(value)
        defaults = RunSettings()
        for (section, key), name in LIFTED.items():  # the lifted keys where they were written
            if getattr(self.settings, name) != getattr(defaults, name):
                out[section][key] = getattr(self.settings, name)
        custom = out['custom']  # the parsed sub-mappings, written back as YAML
        custom['augmentation'] = self.augmentation.to_dict() if self.augmentation is not None else None
        custom['video'] = self.video.to_dict()
        custom['visual_kd'] = {name: dataclasses.asdict(kd) for name, kd in self.visual_kd.items()} or None
        if self.fusion is not None:  # inline, with absolute paths, so the resolved config runs from anywhere
            custom['fusion_config'] = self.fusion.to_dict()
        return out
