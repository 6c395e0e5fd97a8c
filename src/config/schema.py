"""What a config may contain: its sections, the ms-swift argument fields each one owns, and the project's own knobs.

The ``model``, ``template``, ``tuner``, ``data``, ``training`` and ``rlhf`` sections take ms-swift's argument names
verbatim (see ``swift/arguments``), so ms-swift's documentation applies to them unchanged; which section a field
belongs to follows the ms-swift class that declares it (read from ``swift_fields.json``, see ``swift_fields``).
``custom`` and ``deepspeed`` hold the project's own knobs, declared as dataclasses below with one docstring line per
field.
"""
from __future__ import annotations

import typing
from dataclasses import dataclass
from functools import cache
from typing import Any

from . import swift_fields
from .types import Spec, spec_of

SECTIONS = ('model', 'template', 'tuner', 'data', 'training', 'rlhf', 'custom', 'deepspeed')
TOP_LEVEL_KEYS = SECTIONS + ('global_max_length', )

# The YAML spells ms-swift's `tuner_type` as `train_type`, the name most ms-swift recipes and docs use.
TUNER_TYPE_KEY = 'train_type'

# Where the project's default departs from ms-swift's, and why.
PROJECT_DEFAULTS: dict[tuple[str, str], Any] = {
    # ms-swift's default `delete` drops over-length records silently; here a record that does not fit is an error.
    ('template', 'truncation_strategy'): 'raise',
    # ms-swift asks ModelScope whether a newer model revision exists each time a trainer starts: a network call on
    # every run, and ~10 s of retries on an offline machine. Set it to true to get that check back.
    ('training', 'check_model'): False,
    # A multi-turn chat record learns from its last assistant answer only (the record contract); ms-swift's own
    # `default` puts every assistant turn in the labels. `template.loss_scale: default` trains on every turn.
    ('template', 'loss_scale'): 'last_round',
}

# Fields whose accepted values here are narrower than ms-swift's. `delete` would drop records silently and `split`
# is for pre-training: a record either fits (`raise`) or is truncated on purpose (`left` / `right`).
NARROWED_TYPES: dict[tuple[str, str], Any] = {
    ('template', 'truncation_strategy'): typing.Literal['raise', 'left', 'right'],
}

@dataclass
class RunSettings:
    """The keys the project adds to ms-swift's sections (``LIFTED`` says where each is written). Validation lifts them
    out of those sections into this one typed record, so what reaches ms-swift is only ms-swift's and the code reads
    them from here. A null in YAML means the default below."""

    effective_batch_size: typing.Optional[int] = None
    """`training.effective_batch_size`: the global batch; gradient_accumulation_steps = effective_batch_size /
    (micro-batch x world size)."""
    llm_lr: typing.Optional[float] = None
    """`training.llm_lr`: the LLM's learning rate next to ms-swift's `vit_lr` / `aligner_lr` (which default to
    `learning_rate`)."""
    llm_kd_weight: typing.Optional[float] = 1.0
    """`rlhf.llm_kd_weight` (GKD): the weight of the logits JSD term (0 removes the term and its metric)."""
    overwrite_output_dir: bool = False
    """`training.overwrite_output_dir`: replace the run an output_dir already holds (its checkpoints, logs and events);
    without it such a folder is refused at start (src/run/run_dir.py). transformers 5 dropped its own flag of this
    name."""
    trust_remote_code: bool = False
    """`model.trust_remote_code`: run Python code the model (and GRPO reference model) checkpoint ships (its
    `auto_map`). Qwen-VL checkpoints never need it (src/config/remote_code.py)."""
    teacher_trust_remote_code: bool = False
    """`rlhf.teacher_trust_remote_code`: the same for the GKD teacher."""
    start_from_checkpoint: typing.Optional[str] = None
    """`tuner.resume_from_checkpoint`: the playbook's stage 2, a new stage from an earlier stage's checkpoint (its
    weights; step 0, a fresh optimizer). An adapter is merged into `model.model` first (src/run/start_weights.py).
    Not `training.resume_from_checkpoint`."""
    seeded_rollouts: bool = False
    """`rlhf.seeded_rollouts` (GRPO): sample each completion from its own generator, seeded by (seed, step, position
    in the global generation batch), so a step does not depend on how the batch is split over processes
    (src/trainers/grpo.py)."""


# Where each `RunSettings` field is written in a config: (section, key) -> field.
LIFTED: dict[tuple[str, str], str] = {
    ('training', 'effective_batch_size'): 'effective_batch_size',
    ('training', 'llm_lr'): 'llm_lr',
    ('rlhf', 'llm_kd_weight'): 'llm_kd_weight',
    ('training', 'overwrite_output_dir'): 'overwrite_output_dir',
    ('model', 'trust_remote_code'): 'trust_remote_code',
    ('rlhf', 'teacher_trust_remote_code'): 'teacher_trust_remote_code',
    ('tuner', 'resume_from_checkpoint'): 'start_from_checkpoint',
    ('rlhf', 'seeded_rollouts'): 'seeded_rollouts',
}
# Their types as the sections declare them (from the dataclass, the one place they are written).
PROJECT_FIELDS: dict[tuple[str, str], Any] = {
    path: typing.get_type_hints(RunSettings)[name] for path, name in LIFTED.items()
}

# Model paths that may also be hub ids (`Org/Name`), kept as written when no such local path exists.
MODEL_KEYS = {('model', 'model'), ('rlhf', 'teacher_model'), ('rlhf', 'ref_model')}

DEEPSPEED_PRESETS = ('zero0', 'zero1', 'zero2', 'zero2_offload', 'zero3', 'zero3_offload')
FSDP_PRESETS = ('fsdp2', )

# Keys that name files, resolved against the directory of the YAML file that sets them.
PATH_KEYS = {
    ('model', 'model'),
    ('rlhf', 'teacher_model'),
    ('rlhf', 'ref_model'),
    ('tuner', 'adapters'),
    ('training', 'output_dir'),
    ('training', 'logging_dir'),
    ('training', 'resume_from_checkpoint'),
    ('tuner', 'resume_from_checkpoint'),
    ('training', 'external_plugins'),
    ('training', 'fsdp'),
    ('custom', 'train_jsonl'),
    ('custom', 'val_jsonl'),
    ('custom', 'fusion_config'),
    ('deepspeed', 'config'),
}


@dataclass
class CustomConfig:
    """The project's own data and run knobs (the ``custom`` section)."""

    train_jsonl: str | None = None
    """Training records in the project's JSONL contract; relative paths are resolved against the YAML file."""
    val_jsonl: str | None = None
    """Validation records; evaluation runs only when this is set."""
    fusion_config: str | dict[str, typing.Any] | None = None
    """A mixture of sources instead of `train_jsonl` / `val_jsonl`: a YAML / JSON file or the mapping inline
    (see `src/config/fusion.py`)."""
    sample_limit: int | None = None
    """Train (and validate) on the first N records of each file only, for smoke runs and debugging."""
    mode: typing.Literal['dense', 'summary'] = 'dense'
    """How geometry records become answers: `dense` lists objects with geometry, `summary` answers `summary`."""
    coord_format: typing.Optional[typing.Literal['norm1000', 'model_pixel', 'pixel']] = None
    """Coordinates in the answers; unset, the base model's own convention (ms-swift's template for it): `norm1000`,
    integers 0-1000 of the image (Qwen3-VL), or `model_pixel`, pixels of the image the model receives (Qwen2.5-VL).
    `pixel` writes the record's own pixels."""
    prompts: dict[str, str] | None = None
    """User prompt per mode (`dense`, `summary`); unset modes use the built-in prompt."""
    dataset_prompts: dict[str, dict[str, str]] | None = None
    """Per-dataset prompt overrides, keyed by a record's `dataset` field, then by mode."""
    summary_prompt_variants: list[str] | None = None
    """Summary prompts to alternate between: each sample draws one uniformly from (seed, epoch, position), so about
    half of an epoch sees each of two variants, differently every epoch; unset, the one `summary` prompt."""
    augmentation: dict[str, typing.Any] | None = None
    """Training-time augmentation: `ops` (list of {name, prob, params}) and `rotate_box_to` (bbox | poly)."""
    video: dict[str, typing.Any] | None = None
    """Video sampling: `fps`, `min_frames`, `max_frames`, `min_pixels` / `max_pixels` per frame."""
    visual_kd: dict[str, typing.Any] | None = None
    """GKD: feature distillation per component (`vit`, `aligner`, `deepstack`), each {enabled, weight, distance}."""
    trainer_variant: typing.Optional[typing.Literal['gkd_monitor']] = None
    """`gkd_monitor`: log `sft_loss`, `llm_kd_loss`, `vision_kd_loss` and `token_acc` next to `loss` (GKD only)."""
    encode_check: typing.Union[bool, typing.Literal['deep']] = True
    """Check every record before step 1, so a broken or over-length record stops the run before training: each is
    read as training reads it and its encoded length computed from the image sizes (headers) and the tokenizer,
    shared over the ranks and cores and cached next to the data. `deep` also decodes every image and encodes every
    record in full (slower: what training itself does); `false` skips the check."""
    build_tiny_model: bool = False
    """Write the tiny random Qwen3-VL to `model.model` when that directory does not exist (smoke and test configs)."""


@dataclass
class DeepSpeedConfig:
    """The ``deepspeed`` section: maps onto ms-swift's `deepspeed` argument."""

    enabled: bool = False
    """Train under DeepSpeed (GPU only)."""
    config: str = 'zero2'
    """An ms-swift preset (`zero0`..`zero3`, `zero2_offload`, `zero3_offload`) or a path to a DeepSpeed JSON."""


PROJECT_SECTIONS = {'custom': CustomConfig, 'deepspeed': DeepSpeedConfig}

# What the project writes into these fields itself; the same value in YAML (the playbook's snippets carry it) is
# accepted as a no-op, any other value is an error (`PROJECT_OWNED`).
PLACEHOLDERS = {('data', 'dataset'): ['dummy'], ('data', 'val_dataset'): ['dummy']}

# Playbook spellings of ms-swift fields that live in another section: (section, key) -> where the value goes.
ALIASES = {
    ('rlhf', 'temperature'): ('training', 'temperature'),
    # The playbook's FAQ puts the data loader's settings under `data:`; they are transformers' training arguments.
    **{('data', key): ('training', key) for key in (
        'dataloader_num_workers', 'dataloader_pin_memory', 'dataloader_persistent_workers',
        'dataloader_prefetch_factor', 'dataloader_drop_last')},
}

# Knobs that no longer exist, with what to do instead. Matched on the key name in any section.
REMOVED_KEYS: dict[str, str] = {
    'packing': 'packing was removed; batches are padded. Delete the key.',
    'packing_length': 'packing was removed; batches are padded. Delete the key.',
    'packing_num_proc': 'packing was removed; batches are padded. Delete the key.',
    'packing_strategy': 'packing was removed; batches are padded. Delete the key.',
    'padding_free': 'packing (padding_free) was removed; batches are padded. Delete the key.',
    'hard_sample_mining': ('hard sample mining was removed; to train more on hard records, repeat them in the '
                           'training JSONL. Delete the key.'),
}

# ms-swift fields the project sets itself; setting them in YAML would be ignored, so it is an error.
PROJECT_OWNED = {
    ('data', 'dataset'): 'the training records come from `custom.train_jsonl` (the playbook\'s placeholder '
                         '`dataset: ["dummy"]` is accepted and changes nothing)',
    ('data', 'val_dataset'): 'the validation records come from `custom.val_jsonl` (the placeholder `["dummy"]` is '
                             'accepted and changes nothing)',
    ('tuner', 'tuner_type'): f'spell it `tuner.{TUNER_TYPE_KEY}`',
    ('training', 'deepspeed'): 'use the `deepspeed` section (`enabled: true`, `config: zero2`)',
}


@cache
def section_fields(section: str) -> dict[str, Spec]:
    """Every valid key of ``section`` -> its type spec (ms-swift's, from the snapshot, or the project's)."""
    if section in PROJECT_SECTIONS:
        return {name: spec_of(t) for name, t in typing.get_type_hints(PROJECT_SECTIONS[section]).items()}
    fields = dict(swift_fields.fields(section))
    if section == 'tuner':
        fields[TUNER_TYPE_KEY] = {'type': 'str'}
    fields.update({key: spec_of(t) for (sec, key), t in NARROWED_TYPES.items() if sec == section})
    fields.update({key: spec_of(t) for (sec, key), t in PROJECT_FIELDS.items() if sec == section})
    return fields


def yaml_name(field: str) -> str:
    """Where an ms-swift argument is written in a config: ``lora_rank`` -> ``tuner.lora_rank``, ``tuner_type`` ->
    ``tuner.train_type``."""
    if field == 'tuner_type':
        return f'tuner.{TUNER_TYPE_KEY}'
    section = next((s for s in SECTIONS if s not in PROJECT_SECTIONS and field in section_fields(s)), None)
    return f'{section}.{field}' if section else field
