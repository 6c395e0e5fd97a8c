"""Map a validated ``ProjectConfig`` onto ms-swift's own ``SftArguments``."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..config import ConfigError, ProjectConfig
from ..config.schema import TUNER_TYPE_KEY
from ..swift_seams import cpu_process_group
from .adapter_targets import adapter_targets
from .callbacks import DATASET_EPOCH, PREFIXED_LOG_KEYS, RETURN_FREED_MEMORY  # importing registers them
from .engines import deepspeed_config, fsdp_precision, precision_flags, run_dtype

if TYPE_CHECKING:
    from swift.arguments import SftArguments

# ms-swift's TrainArguments refuse an empty dataset list; the project feeds its own datasets to the trainer, so a
# placeholder id keeps ms-swift's checks (and its eval-strategy defaults) happy without loading anything.
PLACEHOLDER_DATASET = ['dummy']

# `target_regex: '^$'` asks for a LoRA with no LoRA layers, where only `modules_to_save` train (the aligner-only
# recipe). PEFT rejects a target that matches nothing unless it is given its own marker for exactly this case.
EMPTY_TARGET_REGEX = '^$'
DUMMY_TARGET_MODULES = 'dummy-target-modules'  # peft.utils.constants.DUMMY_TARGET_MODULES


def sft_argument_kwargs(cfg: ProjectConfig) -> dict[str, Any]:
    """The keyword arguments for ``SftArguments``: the ms-swift sections flattened, plus the project's mapping."""
    kwargs = cfg.swift_kwargs(('model', 'template', 'tuner', 'data', 'training', 'rlhf'))
    kwargs.update(adapter_targets(cfg)[0])  # a list of module names, restricted to the unfrozen components
    if kwargs.get('target_regex') == EMPTY_TARGET_REGEX:
        kwargs['target_regex'] = DUMMY_TARGET_MODULES
    if TUNER_TYPE_KEY in kwargs:
        kwargs['tuner_type'] = kwargs.pop(TUNER_TYPE_KEY)
    kwargs['dataset'] = PLACEHOLDER_DATASET
    if cfg.has_validation:
        kwargs['val_dataset'] = PLACEHOLDER_DATASET
    import torch

    cuda = torch.cuda.is_available()
    if cfg.deepspeed.enabled:
        kwargs['deepspeed'] = deepspeed_config(cfg, cuda)
        kwargs.update(precision_flags(kwargs['deepspeed']))
    elif cfg.training.get('fsdp'):
        kwargs.update(fsdp_precision(cfg, cuda))
    if cfg.settings.effective_batch_size is not None:
        kwargs['gradient_accumulation_steps'] = cfg.gradient_accumulation_steps
    llm_lr = cfg.settings.llm_lr
    if llm_lr is not None:
        # ms-swift's multimodal optimizer gives the LLM `learning_rate`; ViT and aligner keep theirs (default: the
        # configured learning_rate).
        for key in ('vit_lr', 'aligner_lr'):
            if kwargs.get(key) is None:
                kwargs[key] = kwargs.get('learning_rate')
        kwargs['learning_rate'] = llm_lr
        kwargs['optimizer'] = 'multimodal'
    kwargs['callbacks'] = list(kwargs.get('callbacks', [])) + [PREFIXED_LOG_KEYS, DATASET_EPOCH, RETURN_FREED_MEMORY]
    for key, value in cpu_process_group(cfg.world_size, cuda).items():
        kwargs.setdefault(key, value)
    return kwargs


def cpu_precision_problem(cfg: ProjectConfig, kwargs: dict[str, Any], cuda: bool) -> str | None:
    """Why transformers would refuse the run's precision on this machine (bf16 without CUDA, unless `use_cpu`), in
    the words of the config; None when it would not."""
    bf16 = kwargs.get('bf16')
    if cuda or kwargs.get('use_cpu') or not (bf16 or (bf16 is None and run_dtype(cfg) == 'bfloat16')):
        return None
    where = '`training.bf16: true`' if bf16 else '`model.torch_dtype` (bfloat16)'
    return (f'{cfg.source}: {where}: this machine has no CUDA, and transformers trains in bf16 there only when told to '
            'run on the CPU: set `training.use_cpu: true` (bf16 on a CPU is slow), or train in float32 here '
            '(`model.torch_dtype: float32`)')


def to_sft_arguments(cfg: ProjectConfig) -> 'SftArguments':
    """Build ms-swift's ``SftArguments``, or its ``RLHFArguments`` when `rlhf.rlhf_type` is set; their
    ``__post_init__`` reads the model config, so the model must exist."""
    import torch
    from swift.arguments import RLHFArguments, SftArguments

    kwargs = sft_argument_kwargs(cfg)
    if problem := cpu_precision_problem(cfg, kwargs, torch.cuda.is_available()):
        raise ConfigError([problem])
    args = (RLHFArguments if cfg.rlhf.get('rlhf_type') else SftArguments)(**kwargs)
    if cfg.rlhf.get('rlhf_type') == 'gkd':
        # The playbook: the knob is attached to the arguments and their `training_args`, so tooling that reads either
        # (and args.json, which ms-swift writes from the arguments' attributes) sees the value the run used.
        args.llm_kd_weight = args.training_args.llm_kd_weight = cfg.gkd.llm_kd_weight
    return args
