"""The distributed engine of a run (DeepSpeed ZeRO, FSDP2) as the machine at hand can run it.

ms-swift's DeepSpeed presets (``zero0`` .. ``zero3_offload``) are written for GPUs: their precision is ``"auto"``,
which transformers resolves from ms-swift's `fp16` / `bf16`, and ms-swift turns `fp16` on for a float32 model
(mixed precision on a GPU). DeepSpeed then casts the model to half precision, and on a machine without CUDA it
stops before step 1 (``Type fp16 is not supported on your device``); the offload presets pin host memory, which needs
CUDA, and insist on DeepSpeed's compiled CPU Adam. Here a preset is read and resolved once per run:

- precision follows the run's dtype (`model.torch_dtype`, else the checkpoint's): bfloat16 trains in bf16, float16 in
  fp16, float32 in float32, on every engine; a JSON of your own keeps the values it sets;
- without CUDA, offloading has nothing to move (the optimizer state already lives in host memory): pinned memory is
  off and the optimizer is PyTorch's, the same as without DeepSpeed;
- what an engine cannot do on this machine is refused before the model loads, naming the key (fp16 without CUDA).

The resolved dict goes to ms-swift as its `deepspeed` argument, so `args.json` records exactly what ran.
"""
from __future__ import annotations

import copy
import importlib.util
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..config import ConfigError, ProjectConfig
from ..config.model_type import checkpoint_config

if TYPE_CHECKING:
    from ..datasets.precheck import RecordCounts

PRECISIONS = {'float16': 'fp16', 'bfloat16': 'bf16'}
OFFLOAD_KEYS = ('offload_optimizer', 'offload_param')


def swift_presets_dir() -> Path:
    """ms-swift's folder of DeepSpeed / FSDP presets (``swift/config``), found without importing ms-swift."""
    spec = importlib.util.find_spec('swift')
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(['ms-swift is not installed in this environment'])
    return Path(next(iter(spec.submodule_search_locations))) / 'config'


def run_dtype(cfg: ProjectConfig) -> str | None:
    """The dtype the run trains in: `model.torch_dtype`, else the checkpoint's `config.json` (None for a hub id)."""
    if cfg.model.get('torch_dtype'):
        return str(cfg.model['torch_dtype'])
    config = checkpoint_config(cfg.model.get('model') or '') or {}
    dtype = config.get('dtype') or config.get('torch_dtype') or config.get('text_config', {}).get('dtype')
    return str(dtype) if dtype else None


def deepspeed_config(cfg: ProjectConfig, cuda: bool) -> dict[str, Any]:
    """The DeepSpeed config of ``cfg`` (a preset or a JSON file) resolved for the run's dtype and this machine."""
    preset = cfg.deepspeed.config
    path = Path(preset) if preset.endswith('.json') else swift_presets_dir() / f'{preset}.json'
    config = json.loads(path.read_text(encoding='utf-8'))
    resolved = copy.deepcopy(config)
    dtype = run_dtype(cfg)
    for precision in ('fp16', 'bf16'):
        section = resolved.setdefault(precision, {})
        if section.get('enabled', 'auto') == 'auto':
            explicit = cfg.training.get(precision)
            section['enabled'] = bool(explicit) if explicit is not None else PRECISIONS.get(dtype or '') == precision
    if resolved['fp16'].get('enabled') is True and not cuda:
        where = (f'`{path}`: fp16.enabled' if config.get('fp16', {}).get('enabled') is True else
                 '`training.fp16`' if cfg.training.get('fp16') else f'`model.torch_dtype` ({dtype})')
        raise ConfigError([f'{cfg.source}: {where}: DeepSpeed trains in fp16 on GPUs only, and this machine has no '
                           'CUDA; use bfloat16 or float32 here'])
    if not cuda:
        zero = resolved.get('zero_optimization', {})
        for key in OFFLOAD_KEYS:
            if isinstance(zero.get(key), dict):
                zero[key]['pin_memory'] = False
        resolved['zero_force_ds_cpu_optimizer'] = False
    return resolved


def precision_flags(config: dict[str, Any]) -> dict[str, bool]:
    """ms-swift's (transformers') `fp16` / `bf16`, agreeing with the DeepSpeed config: transformers checks that
    they match."""
    return {key: bool(config.get(key, {}).get('enabled')) for key in ('fp16', 'bf16')}


def fsdp_precision(cfg: ProjectConfig, cuda: bool) -> dict[str, bool]:
    """`fp16` / `bf16` of an FSDP run: the run's dtype, as for DeepSpeed (ms-swift would turn fp16 on for a float32
    model, and FSDP would then compute in half precision); `training.fp16` / `bf16` set in the config win."""
    if not cuda and cfg.world_size < 2:
        raise ConfigError([f'{cfg.source}: `training.fsdp`: on CPUs FSDP shards the model across at least two '
                           'processes (`NPROC_PER_NODE=2 scripts/train.sh CONFIG`), and this run has one'])
    dtype = run_dtype(cfg)
    flags = {key: bool(cfg.training[key]) if cfg.training.get(key) is not None else PRECISIONS.get(dtype or '') == key
             for key in ('fp16', 'bf16')}
    if flags['fp16'] and not cuda:
        where = '`training.fp16`' if cfg.training.get('fp16') else f'`model.torch_dtype` ({dtype})'
        raise ConfigError([f'{cfg.source}: {where}: FSDP trains in fp16 on GPUs only, and this machine has no CUDA; '
                           'use bfloat16 or float32 here'])
    return flags


def start_engine(deepspeed: Any, cuda: bool) -> None:
    """Before the model loads: give DeepSpeed its process group on a machine without CUDA.

    On GPUs accelerate starts DeepSpeed's communication backend. On CPUs it starts torch's gloo group only, and
    ZeRO-3's ``deepspeed.zero.Init`` (run by transformers while the model loads, to partition it) then sees a world of
    one process and refuses the batch sizes. ``deepspeed.init_distributed`` over gloo joins the same processes."""
    import os

    import torch.distributed

    if deepspeed and not cuda and torch.distributed.is_available():
        import deepspeed as ds

        if 'WORLD_SIZE' not in os.environ:  # one process without torchrun: a group of one on this host
            os.environ.update(RANK='0', LOCAL_RANK='0', WORLD_SIZE='1', MASTER_ADDR='127.0.0.1',
                              MASTER_PORT=str(free_port()))
        ds.init_distributed(dist_backend='gloo', auto_mpi_discovery=False)


def free_port() -> int:
    """A TCP port no process on this host listens on now: a rendezvous of its own for each group started here, so
    two runs (or two test workers) on one machine never meet on a shared default port."""
    import socket

    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return probe.getsockname()[1]


class EngineMixin:
    """For every trainer of the project: FSDP on CPUs too (``swift_seams.fsdp_on_cpus``), after transformers builds
    its accelerator and before anything is prepared; and FSDP checkpoints that hold the model as well.

    ms-swift's `fsdp2` preset saves the model and optimizer as per-rank shards (``pytorch_model_fsdp_0/``,
    ``optimizer_0/``): fast to write and to resume from, but no tool loads them as a model, and transformers then
    writes no weights of its own (no ``model.safetensors``, no adapter, no ``args.json``). Here every checkpoint of an
    FSDP run also gets the consolidated weights (the model, or the adapter of a LoRA run) in the usual layout, as
    DeepSpeed's ZeRO-3 presets do (`stage3_gather_16bit_weights_on_model_save`), so `transformers`, `swift infer` and
    `swift export` open it."""

    def save_model(self, output_dir: str | None = None, _internal_call: bool = False) -> None:
        from ..swift_seams import save_weights

        plugin = getattr(self.accelerator.state, 'fsdp_plugin', None) if self.is_fsdp_enabled else None
        if plugin is None or 'FULL_STATE_DICT' in str(plugin.state_dict_type):
            return super().save_model(output_dir, _internal_call)
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

        # Every rank takes part in the gather; rank 0 receives the whole model, in host memory.
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        state_dict = get_model_state_dict(self.model, options=options)
        for name in tied_copies(self.model):  # gathered one by one, tied weights come back as separate tensors
            state_dict.pop(name, None)
        if self.args.should_save:
            save_weights(self, output_dir or self.args.output_dir, state_dict)

    def create_accelerator_and_postprocess(self) -> None:
        from ..swift_seams import fsdp2_recompute_keeps_rng, fsdp_on_cpus

        fsdp2_recompute_keeps_rng()  # before anything is prepared: the layers are wrapped in `prepare`
        super().create_accelerator_and_postprocess()
        plugin_args = getattr(self.args, 'fsdp_plugin_args', None)
        if plugin_args is not None and not self.is_fsdp_enabled:
            from accelerate.utils import FullyShardedDataParallelPlugin

            self.is_fsdp_enabled = fsdp_on_cpus(self.accelerator, FullyShardedDataParallelPlugin(**plugin_args))


def tied_copies(model: Any) -> list[str]:
    """The names of parameters that are another parameter (tied weights: `lm_head.weight` of a model whose
    `tie_word_embeddings` shares the input embedding), all but the first name of each. A consolidated FSDP state dict
    holds them as separate tensors, which transformers would write twice (another copy of the embedding, 0.8 GB for
    a 4B model); without them it writes the model as a single process does, and ties them again on load."""
    first: dict[int, str] = {}
    copies = []
    for name, parameter in model.named_parameters(remove_duplicate=False):
        if id(parameter) in first:
            copies.append(name)
        else:
            first[id(parameter)] = name
    return copies


def parameter_sharding(cfg: ProjectConfig) -> str | None:
    """The key that shards the parameters themselves across processes (ZeRO-3, FSDP2), or None."""
    if cfg.deepspeed.enabled:
        preset = cfg.deepspeed.config
        stage = (json.loads(Path(preset).read_text()).get('zero_optimization', {}).get('stage')
                 if preset.endswith('.json') else int(preset[4]) if preset[4:5].isdigit() else None)
        return '`deepspeed.config`' if stage == 3 else None
    return '`training.fsdp`' if cfg.training.get('fsdp') else None


def weights_sharded_on_cpus(cfg: ProjectConfig, cuda: bool) -> str | None:
    """The key that shards the weights over two or more processes computing on CPUs (no ``cuda``), or None: such
    a run hands freed memory back at once (``src/run/allocator.py``)."""
    return parameter_sharding(cfg) if cfg.world_size > 1 and not cuda else None


def mixed_modalities_problem(cfg: ProjectConfig, counts: RecordCounts) -> str | None:
    """Why a run whose parameters are sharded cannot take the media mix of one split of its records, or None.

    With the parameters sharded every process must run the same modules in the same order. SFT gives a micro-batch
    without an image a stand-in row that holds one (``stand_in_image``); GKD and GRPO build their micro-batches
    themselves and have no such row, so a step where one process holds only text records and the other an image
    would leave the processes' collectives out of step: gloo aborts, NCCL hangs until its timeout. In SFT the
    stand-in row gives the processes different row counts, which an evaluation that gathers the predictions
    (``eval_metric``, ``predict_with_generate``) cannot join: measured, gloo aborted in accelerate's gather. Records
    that differ in their media once videos are among them fail the same way in any trainer: a step where one process
    holds only images and another only videos stopped in the backward pass under ZeRO-3 (gloo: "Received data size
    doesn't match expected size"), and transformers' forward (FSDP2) runs the vision tower once for images and once
    more for videos. Each split is judged on its own: a step, or an evaluation batch, holds records of one split."""
    key = parameter_sharding(cfg)
    if key is None or cfg.world_size < 2:
        return None
    records, text_only, videos, images = counts.records, counts.text_only, counts.videos, counts.images
    if videos and not (videos == records and images in (0, records)):
        with_image = f', {images} an image (the first at {counts.first_image})' if images else ''
        return (f'{cfg.source}: {key}: the parameters are sharded across {cfg.world_size} processes, and the '
                f'{counts.split} records differ in their media: of {records}, {videos} have a video (the first at '
                f'{counts.first_video}){with_image}. A step where one process holds only videos and another images '
                '(or text) runs different modules on them and leaves their collectives out of step. Use '
                '`deepspeed.config: zero2` (the optimizer state sharded, not the weights) or data parallelism, or '
                'train the video records in a run of their own')
    if not 0 < text_only < records:
        return None
    mix = (f'{key}: the parameters are sharded across {cfg.world_size} processes, and the {counts.split} records mix '
           f'{text_only} text-only records (the first at {counts.first_text_only}) with {records - text_only} that '
           'have images or videos')
    if cfg.rlhf.get('rlhf_type'):
        return (f'{cfg.source}: {mix}: `rlhf.rlhf_type: {cfg.rlhf["rlhf_type"]}` builds its own micro-batches, and a '
                'step where one process holds only text would leave the processes\' collectives out of step (SFT '
                'trains such a mix). Use `deepspeed.config: zero2` (the optimizer state sharded, not the weights), or '
                'train the text-only records in a run of their own')
    gathered = [k for k in ('eval_metric', 'predict_with_generate') if cfg.training.get(k)]
    if gathered and counts.split == 'validation' and cfg.training.get('eval_strategy') != 'no':
        return (f'{cfg.source}: `training.{gathered[0]}`: {mix}. A micro-batch without an image gets a stand-in row '
                'with one, so the processes hold different numbers of rows, and an evaluation that gathers the '
                'predictions across the processes cannot join them. Leave `training.eval_metric` and '
                '`training.predict_with_generate` unset (the evaluation loss and token accuracy are still logged), '
                'use `deepspeed.config: zero2`, or evaluate the checkpoints with `python -m src.eval`')
    return None
