"""Which checkpoints a run can resume from: a save cut short (a kill, a full disk) must never be picked up.

The trainer writes a checkpoint in place (``checkpoint-N/``: weights, optimizer, scheduler, RNG state, and
``trainer_state.json`` last), so an interrupted save leaves a folder that looks like a checkpoint. Rather than trust the
folder name, a checkpoint is complete when its ``trainer_state.json`` parses and names step N, and each weight file is
whole (a safetensors file is as long as its header says; a torch pickle is a readable zip). A distributed engine's
own state is checked too: DeepSpeed's ``global_stepN/`` (named by ``latest``) holds one optimizer partition per rank,
FSDP's ``pytorch_model_fsdp_0/`` and ``optimizer_0/`` hold their ``.metadata`` and one shard per rank (the ranks
counted by the ``rng_state_<rank>.pth`` files). Incomplete ones are
moved aside as ``incomplete-checkpoint-N`` with a warning, out of reach of resuming and of checkpoint rotation (both
look for ``checkpoint-*``).
"""
from __future__ import annotations

import json
import logging
import re
import struct
import zipfile
from pathlib import Path

from ..config.schema import yaml_name

logger = logging.getLogger(__name__)

CHECKPOINT = re.compile(r'^checkpoint-(\d+)$')
INCOMPLETE_PREFIX = 'incomplete-'
WEIGHTS = ('adapter_model.safetensors', 'model.safetensors', 'model.safetensors.index.json', 'adapter_model.bin',
           'pytorch_model.bin', 'pytorch_model.bin.index.json')
TORCH_FILES = ('optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'adapter_model.bin', 'pytorch_model.bin')
FSDP_STATE = ('pytorch_model_fsdp_0', 'optimizer_0')  # accelerate's sharded model and optimizer folders


def _safetensors_problem(path: Path) -> str | None:
    """Why a safetensors file is not whole: its 8-byte header length, header and data must fill the file exactly."""
    size = path.stat().st_size
    with open(path, 'rb') as f:
        head = f.read(8)
        if len(head) < 8:
            return f'{path.name} is truncated ({size} bytes)'
        (header_len, ) = struct.unpack('<Q', head)
        if 8 + header_len > size:
            return f'{path.name} is truncated (header of {header_len} bytes in a file of {size})'
        try:
            header = json.loads(f.read(header_len))
        except (json.JSONDecodeError, UnicodeDecodeError):
            return f'{path.name} has an unreadable header'
    ends = [t['data_offsets'][1] for k, t in header.items() if k != '__metadata__']
    expected = 8 + header_len + max(ends, default=0)
    if size != expected:
        return f'{path.name} is truncated ({size} of {expected} bytes)'
    return None


def checkpoint_step(path: Path) -> int | None:
    """The step a checkpoint's ``trainer_state.json`` records, or None when it is missing or unreadable."""
    try:
        step = json.loads((path / 'trainer_state.json').read_text()).get('global_step')
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, AttributeError):
        return None
    return step if isinstance(step, int) else None


def checkpoint_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be resumed from, or None when it is a complete checkpoint."""
    path = Path(path)
    if not path.is_dir():
        return f'{path} is not a checkpoint folder'
    step = checkpoint_step(path)
    if step is None:
        return f'{path.name} has no readable trainer_state.json: its save did not finish'
    match = CHECKPOINT.match(path.name)
    if match and step != int(match[1]):
        return f'{path.name}/trainer_state.json says step {step}: the folder holds another save'
    weights = [path / name for name in WEIGHTS if (path / name).is_file()]
    if not weights:
        return f'{path.name} holds no model or adapter weights'
    shards = []
    for index in [w for w in weights if w.name.endswith('.index.json')]:
        try:
            shards += sorted({path / s for s in json.loads(index.read_text())['weight_map'].values()})
        except (json.JSONDecodeError, KeyError, UnicodeDecodeError):
            return f'{index.name} is unreadable'
    for file in weights + shards:
        if not file.is_file():
            return f'{file.name} is missing'
        if file.suffix == '.safetensors' and (problem := _safetensors_problem(file)):
            return problem
    for name in TORCH_FILES:
        if (path / name).is_file() and not zipfile.is_zipfile(path / name):
            return f'{name} is truncated'
    return _engine_state_problem(path)


def _engine_state_problem(path: Path) -> str | None:
    """What is missing or cut short in a DeepSpeed or FSDP checkpoint's own state, or None."""
    ranks = len(list(path.glob('rng_state_*.pth'))) or 1
    if (path / 'latest').is_file():
        tag = (path / 'latest').read_text().strip()
        folder = path / tag
        if not folder.is_dir():
            return f'latest names {tag}, which is missing'
        partitions = sorted(folder.glob('*optim_states.pt'))
        if len(partitions) != ranks:
            return f'{tag} holds {len(partitions)} optimizer partitions for {ranks} ranks'
        for file in partitions + sorted(folder.glob('*model_states.pt')):
            if not zipfile.is_zipfile(file):
                return f'{tag}/{file.name} is truncated'
    for name in FSDP_STATE:
        folder = path / name
        if folder.is_dir():
            if not (folder / '.metadata').is_file():
                return f'{name}/.metadata is missing'
            shards = len(list(folder.glob('__*_0.distcp')))
            if shards != ranks:
                return f'{name} holds {shards} shards for {ranks} ranks'
    return None


def complete_checkpoints(output_dir: str | Path) -> list[Path]:
    """The complete ``checkpoint-N`` folders of ``output_dir``, oldest step first."""
    found = [p for p in Path(output_dir).glob('checkpoint-*') if CHECKPOINT.match(p.name)]
    return sorted((p for p in found if checkpoint_problem(p) is None), key=lambda p: int(CHECKPOINT.match(p.name)[1]))


def set_aside_incomplete(output_dir: str | Path) -> list[Path]:
    """Rename every incomplete ``checkpoint-N`` of ``output_dir`` to ``incomplete-checkpoint-N`` (warning once per
    folder); returns the new paths."""
    moved = []
    for path in sorted(Path(output_dir).glob('checkpoint-*')):
        if not CHECKPOINT.match(path.name) or (problem := checkpoint_problem(path)) is None:
            continue
        target = path.with_name(INCOMPLETE_PREFIX + path.name)
        n = 1
        while target.exists():
            target, n = path.with_name(f'{INCOMPLETE_PREFIX}{path.name}.{n}'), n + 1
        path.rename(target)
        logger.warning(f'{path} is incomplete ({problem}); moved to {target.name} so that nothing resumes from it')
        moved.append(target)
    return moved


# The arguments that decide which parameters train and how (ms-swift's names): a run resumed with other values would
# load an optimizer state and adapter weights shaped for another set of parameters, or train the old adapter under a
# new scaling without a word.
TUNER_ARGUMENTS = ('model', 'tuner_type', 'freeze_llm', 'freeze_vit', 'freeze_aligner', 'trainable_parameters',
                   'trainable_parameters_regex', 'freeze_parameters', 'freeze_parameters_ratio', 'modules_to_save')
LORA_ARGUMENTS = ('lora_rank', 'lora_alpha', 'lora_dropout', 'target_modules', 'target_regex', 'use_dora',
                  'use_rslora', 'lora_bias')


# The optimizer and schedule values a resume restores from the checkpoint's optimizer.pt / scheduler.pt (each group's
# lr and weight decay, Adam's betas and epsilon, the schedule's base learning rates): a new value in the config would
# be recorded in resolved_config.yaml and then not used.
OPTIMIZER_ARGUMENTS = ('learning_rate', 'vit_lr', 'aligner_lr', 'weight_decay', 'adam_beta1', 'adam_beta2',
                       'adam_epsilon')


def resume_mismatches(args: object, checkpoint: str | Path, optimizer: bool = False) -> list[str]:
    """How the tuner of ``args`` (ms-swift's arguments of the run about to resume), or with ``optimizer`` its
    optimizer values, differ from those ``checkpoint`` was trained with (its ``args.json``), one line per argument;
    empty when they agree or the checkpoint does not say."""
    try:
        saved = json.loads((Path(checkpoint) / 'args.json').read_text(encoding='utf-8'))
    except (OSError, ValueError):
        return []
    keys = OPTIMIZER_ARGUMENTS if optimizer else TUNER_ARGUMENTS + (
        LORA_ARGUMENTS if getattr(args, 'tuner_type', None) == 'lora' else ())
    lines = []
    for key in keys:
        if key not in saved or not hasattr(args, key):
            continue
        now, then = getattr(args, key), saved[key]
        if _normalised(now) != _normalised(then):
            lines.append(f'`{yaml_name(key)}`: {then!r} in the checkpoint, {now!r} now')
    return lines


def optimizer_state_problem(checkpoint: str | Path) -> str | None:
    """Why resuming from ``checkpoint`` would not continue its optimizer and schedule (a `save_only_model` save holds
    weights only, and the trainer then starts both afresh without a word), or None."""
    path = Path(checkpoint)
    if ((path / 'optimizer.pt').is_file() or (path / 'latest').is_file()
            or any((path / name).is_dir() for name in FSDP_STATE)):
        return None
    return (f'{path} holds no optimizer state (saved with `training.save_only_model: true`): resuming would start the '
            'optimizer and the learning-rate schedule over. Start a new stage from its weights instead '
            f'(`tuner.resume_from_checkpoint: {path}`), or resume from a checkpoint saved with its optimizer')


def resume_problems(args: object, world_size: int) -> list[str]:
    """Why the run of ``args`` (ms-swift's arguments) cannot continue `training.resume_from_checkpoint` as it is
    configured, each in the words of the config; checked before the model loads."""
    checkpoint = getattr(args, 'resume_from_checkpoint', None)
    if not checkpoint:
        return []
    where = '`training.resume_from_checkpoint`'
    if differences := resume_mismatches(args, checkpoint):
        if any(d.startswith('`tuner.target_regex`: None in the checkpoint') for d in differences):
            differences.append('(a `target_modules` list now leaves the components the freeze flags keep frozen '
                               'without an adapter; a checkpoint trained before that has adapters there too, and no '
                               'config gives them back: start a new stage from it)')
        return [f'{where}: {checkpoint} was trained with other tuner settings than this config gives; resuming would '
                'load its weights and optimizer into a different set of trainable parameters. Resume with the '
                'settings it was trained with, or start a new run (`tuner.resume_from_checkpoint` starts a new stage '
                'from its weights):\n    ' + '\n    '.join(differences)]
    if differences := resume_mismatches(args, checkpoint, optimizer=True):
        return [f'{where}: {checkpoint} restores its optimizer and schedule with the values it was trained with, so '
                'these would be recorded and not used. Resume with the checkpoint\'s values, or start a new stage '
                'from its weights (`tuner.resume_from_checkpoint`):\n    ' + '\n    '.join(differences)]
    problem = (resume_layout_problem(checkpoint, world_size, bool(getattr(args, 'deepspeed', None)),
                                     bool(getattr(args, 'fsdp', None))) or optimizer_state_problem(checkpoint))
    return [f'{where}: {problem}'] if problem else []


def resume_layout_problem(checkpoint: str | Path, world_size: int, deepspeed: bool, fsdp: bool) -> str | None:
    """Why this run cannot load ``checkpoint``'s sharded engine state, or None: DeepSpeed's ``global_stepN/`` and
    FSDP's sharded folders hold one optimizer partition per process, so they load only under the same engine with the
    same number of processes (DeepSpeed stopped with a tensor size mismatch after the model had loaded)."""
    path = Path(checkpoint)
    saved_by = {'DeepSpeed (`deepspeed.enabled: true`)': (path / 'latest').is_file(),
                'FSDP (`training.fsdp`)': any((path / name).is_dir() for name in FSDP_STATE)}
    engine = next((name for name, found in saved_by.items() if found), None)
    if engine is None:
        return None
    running = deepspeed if engine.startswith('DeepSpeed') else fsdp
    if not running:
        return f'{path} was saved under {engine}, which this config does not use; resume it under the same engine'
    ranks = len(list(path.glob('rng_state_*.pth'))) or 1
    if ranks != world_size:
        return (f'{path} was saved by {ranks} processes under {engine}, whose optimizer state is split {ranks} ways; '
                f'this run has {world_size}. Resume it with {ranks} processes (`NPROC_PER_NODE={ranks} '
                'scripts/train.sh ...`)')
    return None


def _normalised(value: object) -> object:
    if isinstance(value, (list, tuple)):
        return sorted(map(str, value))
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
