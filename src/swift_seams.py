"""Every place the project reaches into ms-swift's (or transformers') internals, gathered in one module.

ms-swift 4.6 offers no public hook for what the project changes, so each seam below names what it touches and why.
``tests/test_swift_seams.py`` checks that every name listed in ``PATCHED`` and every method signature in
``OVERRIDDEN`` is still what the pinned versions have (ms-swift 4.6.0, transformers 5.19.0), so an upgrade that
moves one fails there with one clear message instead of silently changing behaviour. It also reads the source of
every other module (AST): a private name of a library read or called there, an override of a library's private
method, an object of a library changed in place, a ``__class__`` rewrite or a module hook that is not listed here
(``OVERRIDDEN``, ``PRIVATE_READS``, ``IN_PLACE``) fails it, and so does a listed private name its class lost.

Subclass overrides of ms-swift's private methods live with their classes and are listed in ``OVERRIDDEN``:

- ``SwiftSft._prepare_dataset`` (``src/trainers/sft_pipeline.py``): the project's datasets instead of ms-swift's
  dataset loading;
- ``SwiftSft._handle_trainer_state`` (``src/trainers/sft_pipeline.py``): with `create_checkpoint_symlink` and no
  evaluation, ms-swift's ``os.symlink(None, 'best')`` fails at the end of the run; such a run links `last` only;
- ``SwiftRLHF._get_trainer_kwargs`` (``src/trainers/rlhf_pipeline.py``): the project's GKD settings reach the
  trainer as a constructor argument;
- ``SwiftMixin._get_data_collator`` (``src/trainers/telemetry.py``): the collator that carries per-dataset labels;
- ``GKDTrainer.compute_loss`` (``src/trainers/gkd.py``): replaced, not extended (ms-swift's returns one loss and no
  features; the project needs the student's visual features and each term). The replacement keeps ms-swift's local
  teacher path (full-vocabulary or top-k JSD through ``_compute_jsd_loss``, ``logits_to_keep``, the teacher as the
  student with its adapter off) and skips three of its branches, which validation refuses instead
  (``GKD_UNSUPPORTED`` in ``src/config/rlhf.py``): the Liger fused JSD (`training.use_liger_kernel`), a teacher
  offloaded to CPU between steps (`rlhf.offload_teacher_model`) and a teacher served over an API
  (`rlhf.teacher_model_server`);
- ``GKDTrainer._prepare_batch_inputs`` (``src/trainers/gkd.py``): each micro-batch also carries its samples'
  dataset names (``OnPolicySample.extra``, split as ms-swift's ``split_by_mini_batches`` splits) and the global
  token and visual-feature counts of its optimizer step. ms-swift's GKD loss is a mean per micro-batch, so its step
  changes with how the global batch is split over processes and accumulation; the project's is a mean over the
  step's global batch and sets transformers' ``Trainer.loss_is_scaled_for_ga`` (5.19) so that transformers does not
  divide it by the accumulation steps again. If an upgrade makes ms-swift normalise globally itself, the test of
  ``tests/test_scale_invariance.py`` still passes with the project's loss, and this seam can go;
- ``GRPOTrainer._score_completions`` (``src/trainers/grpo.py``): ms-swift's scoring, then each record's rewards
  added to per-dataset telemetry (``PRIVATE_READS``: the rewards and metric buffers it reads);
- ``GRPOTrainer._engine_infer`` (``src/trainers/grpo.py``): with `rlhf.seeded_rollouts`, one request at a time,
  each under its own seed (ms-swift's transformers engine samples a batch from one per-process random stream);
- ``resample_encode_failed_inputs`` of ``GKDTrainer`` and ``GRPOTrainer``: ``NoResample`` below.

One seam lives with the data path it serves: ``src/datasets/pixels.py`` stands in for ``processor.image_processor``
during ``DenseCaptionDataset``'s encodes, relying on ms-swift's Qwen-VL ``_encode`` calling it as
``(images=..., return_tensors='pt', do_resize=False)``, and hooks transformers' Qwen-VL ``*PatchEmbed`` modules. Any
other call goes to the real processor and a model without those modules gets float rows, so an upgrade that moves
either costs speed, not correctness; ``tests/datasets/test_pixels.py`` then fails on the uint8 dtype it expects.

One seam is accelerate's: ``fsdp2_recompute_keeps_rng`` makes FSDP2's activation checkpointing recompute a layer
with the dropout masks of its forward (accelerate wraps layers with ``preserve_rng_state=False``).

One seam is safetensors': ``safetensors_keep_file_modes`` gives the files ``safetensors.torch.save_file`` writes
the mode an ordinary file gets (safetensors 0.8 writes through a temporary file created 0600, so another user, a
serving process or a container could not read a checkpoint's weights; upstream issue safetensors#782).

One seam is transformers' checkpoint rotation: ``rotation_counts_checkpoints_only`` has ``save_total_limit`` count
and delete only ``checkpoint-<N>`` folders. transformers 5.19 (``trainer_utils.sort_checkpoints``) takes every
``checkpoint-*`` folder, so a resumed run deleted ``swift export``'s ``checkpoint-N-merged/`` and the project's
stage-2 merge, which a stage-2 adapter names as its base.

One seam is the interpreter's own: ``leave_without_teardown`` ends a process of a multi-process run with
``os._exit`` after running Python's thread shutdown and exit handlers itself (``threading._shutdown``,
``atexit._run_exitfuncs``), so torch's C++ teardown, which aborted finished runs, never runs.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import importlib
import logging
import os
import sys
import threading
from typing import Any, Iterable, Iterator, NoReturn

PREFIXES = ('train/', 'eval/', 'test/')
LOGGING_JSONL = 'logging.jsonl'

# module -> the attributes the project reads, writes or wraps there.
PATCHED = {
    'swift.trainers': ('TrainerFactory', ),
    'swift.trainers.patcher': ('append_to_jsonl', ),
    'swift.pipelines.train.sft': ('append_to_jsonl', 'SwiftSft'),
    'swift.pipelines.train.rlhf': ('SwiftRLHF', ),
    'swift.callbacks': ('callbacks_map', ),
    'swift.rewards': ('orms', ),
    'swift.template.base': ('MaxLengthError', ),
    'swift.rlhf_trainers': ('GKDTrainer', 'GRPOTrainer'),
    'swift.rlhf_trainers.gkd_loss': ('DataSource', 'TeacherOutput'),
    'transformers.integrations.integration_utils': ('rewrite_logs', ),
    'transformers.dynamic_module_utils': ('resolve_trust_remote_code', ),
    'swift.model.register': ('ModelLoader', ),
    'transformers.trainer': ('Trainer', ),
}
# class -> the class attributes the project sets on its subclasses.
CLASS_ATTRIBUTES = {('transformers.trainer', 'Trainer'): ('loss_is_scaled_for_ga', ),
                    ('swift.rl_core.data', 'OnPolicySample'): ('extra', )}
# accelerate's names that fsdp_on_cpus and fsdp2_recompute_keeps_rng rely on.
PATCHED['accelerate.state'] = ('AcceleratorState', )
PATCHED['accelerate.utils'] = ('DistributedType', )
PATCHED['accelerate.accelerator'] = ('fsdp2_apply_ac', )
PATCHED['torch.distributed.algorithms._checkpoint.checkpoint_wrapper'] = ('checkpoint_wrapper', )
# what save_file calls (looked up at each call, so every importer of save_file is covered)
PATCHED['safetensors.torch'] = ('serialize_file', )
# checkpoint rotation's listing, where transformers defines it and where transformers and ms-swift import it
CHECKPOINT_LISTERS = ('transformers.trainer_utils', 'transformers.trainer', 'swift.trainers.mixin')
PATCHED.update({module: PATCHED.get(module, ()) + ('sort_checkpoints', ) for module in CHECKPOINT_LISTERS})
# transformers' auto classes, each of which imports `resolve_trust_remote_code` under its own name.
AUTO_MODULES = tuple(f'transformers.models.auto.{name}' for name in (
    'configuration_auto', 'tokenization_auto', 'processing_auto', 'image_processing_auto', 'video_processing_auto',
    'feature_extraction_auto', 'auto_factory'))
PATCHED.update({module: ('resolve_trust_remote_code', ) for module in AUTO_MODULES})
# (module, class, method) -> the parameters the project's override or call relies on.
OVERRIDDEN = {
    ('swift.pipelines.train.sft', 'SwiftSft', '_prepare_dataset'): ('self', ),
    ('swift.pipelines.train.sft', 'SwiftSft', '_handle_trainer_state'): ('self', 'trainer', 'is_write_rank'),
    ('swift.pipelines.train.rlhf', 'SwiftRLHF', '_get_trainer_kwargs'): ('self', ),
    ('swift.trainers.mixin', 'SwiftMixin', '_get_data_collator'): ('self', 'args', 'template'),
    ('swift.rlhf_trainers', 'GKDTrainer', 'compute_loss'): ('self', 'model', 'inputs', 'return_outputs',
                                                             'num_items_in_batch'),
    ('swift.rlhf_trainers', 'GKDTrainer', '_compute_jsd_loss'): ('self', 'student_logits', 'teacher_output',
                                                                  'labels'),
    ('swift.rlhf_trainers', 'GKDTrainer', 'prepare_logits_to_keep'): ('self', 'inputs'),
    ('swift.rlhf_trainers', 'GKDTrainer', '_prepare_batch_inputs'): ('self', 'samples'),
    ('swift.rlhf_trainers', 'GKDTrainer', 'split_by_mini_batches'): ('self', 'samples'),
    ('swift.rlhf_trainers', 'GKDTrainer', 'resample_encode_failed_inputs'): ('self', 'inputs', 'max_resample_rounds',
                                                                               'strip_response'),
    ('swift.rlhf_trainers', 'GRPOTrainer', '_engine_infer'): ('self', 'infer_requests', 'request_config', 'use_tqdm'),
    ('swift.rlhf_trainers', 'GRPOTrainer', '_score_completions'): ('self', 'samples'),
    ('swift.rlhf_trainers', 'GRPOTrainer', 'resample_encode_failed_inputs'): ('self', 'inputs', 'max_resample_rounds',
                                                                               'strip_response'),
    ('transformers.trainer', 'Trainer', 'create_accelerator_and_postprocess'): ('self', ),
    ('transformers.trainer', 'Trainer', 'save_model'): ('self', 'output_dir', '_internal_call'),
    ('swift.trainers.mixin', 'SwiftMixin', '_save'): ('self', 'output_dir', 'state_dict'),
}

# Library internals touched outside this module, per file under src/: private names read or called (with the class
# that has them), objects of a library changed in place (`name=`: an attribute written on an object the project does
# not own), `__class__` rewrites and module hooks. ``tests/test_swift_seams.py`` reads the source of every file
# (AST) and fails on a use not listed here or in ``OVERRIDDEN`` (an override of a library's private method), on a
# listed use that is gone, and on a private name its class no longer has.
PRIVATE_READS: dict[str, dict[str, tuple[str, str]]] = {
    'trainers/gkd.py': {
        '_compute_jsd_loss': ('swift.rlhf_trainers:GKDTrainer', 'ms-swift\'s JSD (full or top-k), reused by the '
                                                                 'project\'s compute_loss'),
        '_compute_acc': ('swift.rlhf_trainers:GKDTrainer', 'its token accuracy metric, logged as ms-swift logs it'),
        '_teacher_use_disable_adapter': ('swift.rlhf_trainers:GKDTrainer', 'whether the teacher is the student '
                                                                            'with its adapter off'),
    },
    'trainers/grpo.py': {
        '_rewards_per_func': ('swift.rlhf_trainers:GRPOTrainer', 'the per-function rewards _score_completions '
                                                                 'computed, for per-dataset telemetry'),
        '_metrics': ('swift.rlhf_trainers:GRPOTrainer', 'the metric buffers the trainer logs from'),
    },
}
IN_PLACE: dict[str, dict[str, str]] = {
    'datasets/augmentation/pipeline.py': {
        '__class__=': 'an augmented PIL image becomes AugmentedImage, whose deepcopy is itself (no pixel copy in '
                      'ms-swift\'s Template.encode)',
    },
    'datasets/pixels.py': {
        'image_processor=': 'the processor\'s image processor swapped for Uint8Images during one encode',
        'register_forward_pre_hook()': 'Qwen-VL *PatchEmbed modules expand uint8 patch rows',
    },
    'eval/coco_ap.py': {
        'maxDets=': 'pycocotools\' documented COCOeval.params knob, raised above 100 so dense images are not cut',
    },
    'trainers/visual_kd.py': {
        'register_forward_hook()': 'the vision tower\'s outputs captured for visual-feature KD',
    },
    'trainers/sft_pipeline.py': {
        'val_dataset=': 'ms-swift\'s args name the run\'s validation file for `swift infer --load_data_args`',
        'last_model_checkpoint=': 'transformers\' TrainerState: the `last` link, as ms-swift sets it',
    },
    'run/run_log.py': {
        'propagate=': 'logging: the libraries\' loggers write to the run log only',
    },
    'rewards/summary.py': {
        '__name__=': 'the reward functions carry the names ms-swift logs them under',
        '__qualname__=': 'the same',
        '__doc__=': 'the same',
    },
    'testing/tiny_model.py': {
        'decoder=': 'tokenizers: the tiny BPE tokenizer is built piece by piece',
        'pre_tokenizer=': 'the same',
        'bos_token_id=': 'transformers\' config of the tiny model',
        'eos_token_id=': 'the same, and its generation config',
        'pad_token_id=': 'the same',
    },
}


def prefixed(row: dict[str, Any]) -> dict[str, Any]:
    """A ``logging.jsonl`` row with every key under ``train/``, ``eval/`` or ``test/``: the rule transformers applies
    to TensorBoard's scalars (``eval_x`` -> ``eval/x``, anything else -> ``train/x``), also for ms-swift's progress
    fields and run summary; the summary's ``log_history`` rows are renamed the same way."""
    from transformers.integrations.integration_utils import rewrite_logs

    done = {k: v for k, v in row.items() if k.startswith(PREFIXES)}
    out = {**rewrite_logs({k: v for k, v in row.items() if k not in done}), **done}
    history = out.get('train/log_history')
    if isinstance(history, list):
        out['train/log_history'] = [prefixed(h) if isinstance(h, dict) else h for h in history]
    return out


@contextlib.contextmanager
def prefixed_logging_jsonl() -> Iterator[None]:
    """While a run trains, ms-swift's ``logging.jsonl`` writers (its progress callback and the end-of-run summary)
    write ``prefixed`` rows. Both call ``swift.utils.append_to_jsonl`` through their module's own name for it."""
    modules = [importlib.import_module(name) for name in ('swift.trainers.patcher', 'swift.pipelines.train.sft')]
    original = modules[0].append_to_jsonl

    def append(path, obj, *args, **kwargs):
        if str(path).endswith(LOGGING_JSONL) and isinstance(obj, dict):
            obj = prefixed(obj)
        return original(path, obj, *args, **kwargs)

    saved = [(m, m.append_to_jsonl) for m in modules]
    for module in modules:
        module.append_to_jsonl = append
    try:
        yield
    finally:
        for module, function in saved:
            module.append_to_jsonl = function


@contextlib.contextmanager
def trainer_class_for_run(task: str, trainer_cls: type) -> Iterator[None]:
    """Have ms-swift's ``TrainerFactory`` build ``trainer_cls`` for ``task`` during one run, then restore its own.

    ms-swift picks the trainer class by task name from ``TrainerFactory.TRAINER_MAPPING`` (dotted paths)."""
    from swift.trainers import TrainerFactory

    mapping = TrainerFactory.TRAINER_MAPPING
    original = mapping[task]
    mapping[task] = f'{trainer_cls.__module__}.{trainer_cls.__qualname__}'
    try:
        yield
    finally:
        mapping[task] = original


@contextlib.contextmanager
def project_run(task: str, trainer_cls: type) -> Iterator[None]:
    """Both seams of a training run: the project's trainer class and prefixed ``logging.jsonl`` rows."""
    with trainer_class_for_run(task, trainer_cls), prefixed_logging_jsonl():
        yield


def register_callbacks(callbacks: dict[str, type]) -> None:
    """Make trainer callbacks available by name in `training.callbacks` (ms-swift's ``callbacks_map``)."""
    from swift.callbacks import callbacks_map

    callbacks_map.update(callbacks)


def register_rewards(rewards: dict[str, Any]) -> None:
    """Make reward functions available by name in `rlhf.reward_funcs` (ms-swift's ``orms``, which holds factories
    called with the arguments object)."""
    from swift.rewards import orms

    for name, reward in rewards.items():
        orms[name] = lambda args=None, _reward=reward, **kwargs: _reward


class NoResample:
    """Mixin for ms-swift's GKD / GRPO trainers: never swap a record that fails to encode for a random other one.

    Every record was encoded once before training (``custom.encode_check``); a failure left is an error that must
    surface, not a silent change of the training data."""

    def resample_encode_failed_inputs(self, inputs, *args, **kwargs):
        return inputs


def max_length_error() -> type[Exception]:
    """The exception ms-swift's template raises for an over-length record with `truncation_strategy: raise`."""
    from swift.template.base import MaxLengthError

    return MaxLengthError


@contextlib.contextmanager
def template_limits(template: Any, **limits: Any) -> Iterator[Any]:
    """Change ``truncation_strategy`` / ``max_length`` of an ms-swift template for a block, then restore them (the
    template has no per-call setting)."""
    saved = {key: getattr(template, key) for key in limits}
    for key, value in limits.items():
        setattr(template, key, value)
    try:
        yield template
    finally:
        for key, value in saved.items():
            setattr(template, key, value)


class _TrustWarningFilter(logging.Filter):
    """Drops ms-swift's 'Loading ... with trust_remote_code=True' warnings, which are not true under the guard."""

    def filter(self, record: logging.LogRecord) -> bool:
        return 'with trust_remote_code=True' not in record.getMessage()


@contextlib.contextmanager
def remote_code_only_for(trusted: Iterable[str]) -> Iterator[None]:
    """While models load, no checkpoint runs code of its own unless its folder is in ``trusted``.

    transformers imports a checkpoint's `auto_map` modules only when `trust_remote_code` resolves true, and ms-swift's
    loader asks for it on every load (``ModelLoader.default_trust_remote_code = True``; ``_get_model_info`` reads the
    config with `trust_remote_code=True` hard-coded). This wraps transformers' own decision point,
    ``resolve_trust_remote_code``, so that it resolves false for any other folder: a native architecture then loads
    with its native classes, and anything else fails instead of running code. The configs are checked before this
    (``src/config/remote_code.py``), so a local checkpoint that asks for its code is refused with a message first."""
    import transformers.dynamic_module_utils as dynamic
    from swift.model.register import ModelLoader

    allowed = {os.path.realpath(p) for p in trusted}
    original = dynamic.resolve_trust_remote_code

    def resolve(trust_remote_code, model_name, has_local_code, has_remote_code, *args, **kwargs):
        if has_remote_code and os.path.realpath(str(model_name)) not in allowed:
            trust_remote_code = False
        return original(trust_remote_code, model_name, has_local_code, has_remote_code, *args, **kwargs)

    modules = [dynamic] + [importlib.import_module(name) for name in AUTO_MODULES]
    saved = [(module, module.resolve_trust_remote_code) for module in modules]
    default = ModelLoader.default_trust_remote_code
    quiet = _TrustWarningFilter()
    for module in modules:
        module.resolve_trust_remote_code = resolve
    ModelLoader.default_trust_remote_code = bool(allowed)
    if not allowed:
        logging.getLogger('swift').addFilter(quiet)
    try:
        yield
    finally:
        for module, function in saved:
            module.resolve_trust_remote_code = function
        ModelLoader.default_trust_remote_code = default
        logging.getLogger('swift').removeFilter(quiet)


def cpu_process_group(world_size: int, cuda: bool) -> dict[str, Any]:
    """Training arguments that make a multi-process run on CPUs data-parallel.

    accelerate (1.15, through transformers 5.19 and ms-swift 4.6) sets up a process group for CPUs only when the
    trainer asks for the CPU (`use_cpu`): without it, torchrun's processes each train their own copy of the model,
    gradients are never averaged, `num_items_in_batch` is counted per process, and the logged loss and gradient norm
    come out about world-size times too high (2 processes: loss 23.82 for the 11.92 of one process with the same global
    batch). With `use_cpu` and gloo the run is one data-parallel model and matches the single-process figures
    (tests/test_scale_invariance.py). On GPUs nothing is needed."""
    if world_size > 1 and not cuda:
        return {'use_cpu': True, 'ddp_backend': 'gloo'}
    return {}


def set_video_sampling(environment: dict[str, str]) -> None:
    """qwen-vl-utils reads its video sampling settings (`FPS`, `FPS_MAX_FRAMES`, ...) from the environment once per
    process, when ms-swift first loads the processor; set them before that."""
    os.environ.update(environment)


def set_tensorboard_dir(path: str) -> None:
    """ms-swift hands the TensorBoard directory to transformers (>= 5.15) through `TENSORBOARD_LOGGING_DIR` with
    `setdefault`, so a second run in the same process (tests, notebooks) would write into the first run's; set it."""
    os.environ['TENSORBOARD_LOGGING_DIR'] = path


def fsdp_on_cpus(accelerator: Any, fsdp_plugin: Any) -> bool:
    """Give a multi-process CPU run the FSDP its `training.fsdp` asks for; returns whether it did.

    accelerate (1.15) turns an FSDP plugin into ``DistributedType.FSDP`` for GPU-like devices only
    (``AcceleratorState._prepare_backend``); a run on CPUs (``MULTI_CPU``, gloo) keeps the plugin aside and trains an
    unsharded copy on every process, without a word. PyTorch's FSDP2 (``fully_shard``) runs on CPU tensors over gloo,
    so the state is switched to FSDP before anything is prepared."""
    from accelerate.utils import DistributedType

    state = accelerator.state
    if fsdp_plugin is None or state.distributed_type != DistributedType.MULTI_CPU:
        return False
    state.distributed_type = DistributedType.FSDP
    state.fsdp_plugin = fsdp_plugin
    return True


def fsdp2_recompute_keeps_rng() -> bool:
    """Make FSDP2's activation checkpointing recompute each layer with the random state of its forward; returns
    whether it changed anything (once per process).

    accelerate (1.15, ``fsdp_utils.fsdp2_apply_ac``, what ms-swift's `fsdp2` preset turns on with
    ``activation_checkpointing``) wraps every layer in ``checkpoint_wrapper(layer, preserve_rng_state=False)``: the
    backward pass recomputes a layer with new dropout masks, so the gradient belongs to another forward than the one
    that gave the loss. With LoRA's default dropout (0.05) step 1 under FSDP2 logged DDP's loss with another gradient
    norm (0.29920 against 0.29572). Here accelerate's call gets a ``checkpoint_wrapper`` that keeps the random state,
    as torch's default does. ``tests/test_swift_seams.py`` fails when accelerate stops passing False, so the fix can
    go."""
    import accelerate.accelerator as accelerator_module
    from torch.distributed.algorithms._checkpoint import checkpoint_wrapper as wrappers

    apply = accelerator_module.fsdp2_apply_ac
    if getattr(apply, 'keeps_rng', False):
        return False

    def keeping_rng(accelerator: Any, model: Any) -> Any:
        original = wrappers.checkpoint_wrapper
        wrappers.checkpoint_wrapper = lambda module, *args, **kwargs: original(
            module, *args, **{**kwargs, 'preserve_rng_state': True})
        try:
            return apply(accelerator, model)
        finally:
            wrappers.checkpoint_wrapper = original

    keeping_rng.keeps_rng = True
    accelerator_module.fsdp2_apply_ac = keeping_rng
    return True


def safetensors_keep_file_modes() -> bool:
    """Have every file ``safetensors.torch.save_file`` writes keep the mode a plain ``open()`` gives: an existing
    file's own, else ``0o666`` less the umask; returns whether it changed anything (once per process).

    safetensors 0.8 writes through a temporary file that the Rust ``tempfile`` crate creates with mode 0600 and renames
    into place, so a checkpoint's ``model.safetensors`` / ``adapter_model.safetensors`` was readable by its writer
    only, beside a ``config.json`` every user can read (vLLM run by another user: "No adapter found").
    ``save_file`` calls the module's ``serialize_file`` by name, which transformers, peft and ms-swift reach however
    they import ``save_file``. ``tests/test_swift_seams.py`` fails when safetensors writes plain modes itself, so this
    can go."""
    import safetensors.torch as st

    serialize = st.serialize_file
    if getattr(serialize, 'keeps_modes', False):
        return False
    umask = os.umask(0o022)  # read once, here, before the run starts threads: reading it means setting it
    os.umask(umask)

    def keeping_modes(tensors: Any, filename: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            mode = os.stat(filename).st_mode & 0o7777
        except OSError:
            mode = 0o666 & ~umask
        result = serialize(tensors, filename, *args, **kwargs)
        os.chmod(filename, mode)
        return result

    keeping_modes.keeps_modes = True
    st.serialize_file = keeping_modes
    return True


def rotation_counts_checkpoints_only() -> bool:
    """Have transformers' checkpoint listing (what ``save_total_limit`` rotates, and the end of training's cleanup)
    take ``checkpoint-<N>`` folders only; returns whether it changed anything (once per process).

    ``sort_checkpoints`` lists every ``checkpoint-*`` folder and reads a step from its name's first number, so
    ``checkpoint-2-merged/`` (``swift export --merge_lora``, the project's stage-2 merge) counted as step 2 and was
    deleted as the oldest checkpoint once a resumed run saved past the limit. ``tests/test_swift_seams.py`` fails when
    transformers lists checkpoint folders only, so this can go."""
    import re
    from pathlib import Path

    modules = [importlib.import_module(name) for name in CHECKPOINT_LISTERS]
    original = modules[0].sort_checkpoints
    if getattr(original, 'checkpoints_only', False):
        return False

    def checkpoints_only(output_dir: str, checkpoint_prefix: str = 'checkpoint', *args: Any, **kwargs: Any) -> list:
        listed = original(output_dir, checkpoint_prefix, *args, **kwargs)
        return [p for p in listed if re.fullmatch(rf'{re.escape(checkpoint_prefix)}-\d+', Path(p).name)]

    checkpoints_only.checkpoints_only = True
    for module in modules:
        module.sort_checkpoints = checkpoints_only
    return True


def save_weights(trainer: Any, output_dir: str, state_dict: dict[str, Any]) -> None:
    """Write ``state_dict`` (a whole model's) as the checkpoint's weights the way the trainer writes its own:
    ms-swift's ``SwiftMixin._save`` (the adapter of a LoRA, the model otherwise, the processor, ``args.json``)."""
    trainer._save(output_dir, state_dict=state_dict)


QWEN3_VL_MODELS = ('Qwen3VLModel', 'Qwen3VLMoeModel')


def generation_sees_images(model: Any) -> int:
    """Under DeepSpeed, let Qwen3-VL generation see its images; returns how many models were fixed.

    ms-swift (4.6) replaces a Qwen3-VL model's ``forward`` (keeping transformers' as ``origin_forward``) with its own
    under DeepSpeed, so that a text-only batch still runs the vision tower. transformers (5.19) generates by encoding
    the images once and passing ``mm_encoder_outputs`` instead of ``pixel_values``; ms-swift's forward does not read
    them, takes the text-only branch, and the model answers without its image: GRPO's rollouts under any ZeRO stage
    were sampled from a model that never saw the picture. A call that carries ``mm_encoder_outputs`` (only generation
    does) goes to transformers' own forward, whose weights are whole then (ZeRO-3 gathers them for generation).
    ``tests/test_swift_seams.py`` fails when ms-swift reads them itself, so the fix can go."""
    fixed = 0
    for module in model.modules():
        if type(module).__name__ not in QWEN3_VL_MODELS or not hasattr(module, 'origin_forward') or getattr(
                module, '_generation_sees_images', False):
            continue
        swift_forward = module.forward

        def forward(*args: Any, _swift=swift_forward, _origin=module.origin_forward, **kwargs: Any) -> Any:
            return (_origin if kwargs.get('mm_encoder_outputs') is not None else _swift)(*args, **kwargs)

        module.forward = forward
        module._generation_sees_images = True
        fixed += 1
    return fixed


def leave_without_teardown(code: int) -> NoReturn:
    """End the process with ``code``; a process of a multi-process run ends without the C++ runtime's teardown.

    After a run that trained and saved to the end, and after every process had left the process group together,
    a process was still aborted now and then while the interpreter shut down ("terminate called without an active
    exception", exit code -6, seen in CI under DDP and ZeRO-3): torch's C++ objects are destroyed in no fixed order
    once Python is gone. Such a process does what Python's own exit does first: ``threading._shutdown`` (it stops
    idle thread pools that were never shut down, then waits for the other non-daemon threads; joining them without
    it hung on such a pool), the exit handlers, a flush of Python's and the C library's output buffers; then it
    leaves without the teardown."""
    if int(os.environ.get('WORLD_SIZE', '1')) < 2:
        sys.exit(code)
    threading._shutdown()
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)
    os._exit(code)
