"""Checks and defaults for post-training (`rlhf.rlhf_type`), run with the rest of validation, before any model loads.

GRPO here is the summary task's post-training: the reference answer of each record is its `summary`, scored by the
project's reward functions (src/rewards). GKD anchors training to a frozen teacher (src/trainers/gkd.py); the checks
that need the teacher's and the student's files (`gkd_model_problems`) run with the input checks, still before any
model loads.
"""
from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from . import swift_fields
from .model_type import checkpoint_config

if TYPE_CHECKING:
    from .project import ProjectConfig

SUPPORTED = ('grpo', 'gkd')
# The reward functions `rlhf.reward_funcs` can name (src/rewards/summary.py registers them with ms-swift).
REWARDS = ('summary_format', 'summary_header', 'summary_parse', 'summary_dataset', 'summary_objects_total',
           'summary_content_f1', 'summary_content')
GKD_ONLY = {('custom', 'visual_kd'), ('custom', 'trainer_variant'), ('rlhf', 'llm_kd_weight')}
GRPO_ONLY = {('rlhf', 'seeded_rollouts')}
# ms-swift GKD features the project's trainer does not take (its `compute_loss` skips these branches of ms-swift's:
# src/swift_seams.py); visual KD and the monitor need a local teacher's features and logits.
GKD_UNSUPPORTED = {
    ('rlhf', 'teacher_model_server'): 'a teacher served over an API',
    ('rlhf', 'offload_teacher_model'): 'a teacher offloaded to CPU between steps',
    ('training', 'use_liger_kernel'): "Liger's fused JSD loss",
}
# Where the project's GRPO default departs from ms-swift's (temperature 0.9, 512 tokens), and why: a summary is a
# fixed format, so sampling stays close to greedy, and a dense scene's summary can be long.
GRPO_DEFAULTS = {('training', 'temperature'): 0.3, ('rlhf', 'max_completion_length'): 2048}


def resolve_rlhf(cfg: 'ProjectConfig') -> None:
    """Fill the project's post-training defaults into a validated config (validation itself only reads)."""
    rlhf_type = cfg.rlhf.get('rlhf_type')
    if rlhf_type == 'gkd' and cfg.model.get('model_type'):
        # The teacher is the same architecture as the student unless said otherwise; ms-swift cannot tell qwen3_vl
        # from its embedding / reranker variants by the checkpoint alone.
        cfg.rlhf.setdefault('teacher_model_type', cfg.model['model_type'])
    elif rlhf_type == 'grpo':
        for (section, key), value in GRPO_DEFAULTS.items():
            getattr(cfg, section).setdefault(key, value)
        # ms-swift's GRPO takes only `left` (or `delete`, which drops records silently). Nothing is cut in practice:
        # before training every prompt + reference answer is checked to fit with room for `max_completion_length`.
        cfg.template['truncation_strategy'] = 'left'


def check_rlhf(cfg: 'ProjectConfig', where: Callable[[tuple[str, ...]], str], errors: list[str]) -> None:
    """Validate the `rlhf` section for the chosen `rlhf_type`."""
    rlhf_type = cfg.rlhf.get('rlhf_type')
    for only, name in ((GKD_ONLY, 'gkd'), (GRPO_ONLY, 'grpo')):
        for section, key in only:
            value = getattr(cfg, section).get(key) if section == 'rlhf' else getattr(cfg.custom, key)
            if value is not None and rlhf_type != name:
                errors.append(f'{where((section, key))}: applies to {name.upper()} only (`rlhf.rlhf_type: {name}`)')
    if rlhf_type is None:
        if cfg.rlhf:
            errors.append(f'{where(("rlhf", next(iter(cfg.rlhf))))}: the `rlhf` section applies to post-training '
                          f'only; set `rlhf.rlhf_type` ({", ".join(SUPPORTED)}) or remove the section')
        return
    if rlhf_type not in SUPPORTED:
        errors.append(f'{where(("rlhf", "rlhf_type"))}: {rlhf_type!r} is not available in this version; supported: '
                      f'{", ".join(SUPPORTED)}')
        return
    if rlhf_type == 'gkd':
        _check_gkd(cfg, where, errors)
    else:
        _check_grpo(cfg, where, errors)


def _check_gkd(cfg: 'ProjectConfig', where: Callable[[tuple[str, ...]], str], errors: list[str]) -> None:
    rlhf = cfg.rlhf
    if not rlhf.get('teacher_model'):
        errors.append(f'{where(("rlhf", "rlhf_type"))}: GKD needs `rlhf.teacher_model`, the frozen teacher (usually '
                      'the base checkpoint the run starts from)')
    for (section, key), what in GKD_UNSUPPORTED.items():
        if getattr(cfg, section).get(key):
            errors.append(f'{where((section, key))}: {what} is not supported with GKD here: the project\'s GKD loss '
                          'takes the local teacher\'s logits and visual features at every step (`rlhf.teacher_model`)')
    if rlhf.get('seq_kd'):
        errors.append(f'{where(("rlhf", "seq_kd"))}: teacher-generated targets are not implemented in ms-swift '
                      f'{swift_fields.snapshot()["ms_swift"]} (it stops with NotImplementedError once the models have '
                      'loaded); set `seq_kd: false` (forward-only KD), or `lmbda` > 0 to train on student samples')
    lmbda = rlhf.get('lmbda') if rlhf.get('lmbda') is not None else swift_fields.default('rlhf', 'lmbda')
    if rlhf.get('lmbda') is None:
        cfg.warnings.append(f'{where(("rlhf", "rlhf_type"))}: `rlhf.lmbda` is not set, so ms-swift\'s default {lmbda} '
                            'applies: that share of batches is sampled from the student (on-policy GKD, with '
                            '`max_completion_length` tokens of room). Set `lmbda: 0` for forward-only KD, or the share '
                            'you want')
    if lmbda > 0 or rlhf.get('seq_kd'):
        _check_room_for_completions(cfg, where, errors, f'GKD samples completions (`lmbda: {lmbda}`)')
    if lmbda == 0 and not rlhf.get('seq_kd'):  # forward-only: the playbook says these two are ignored there
        if cfg.training.get('temperature') is not None:
            cfg.warnings.append(f'{where(("training", "temperature"))}: forward-only GKD samples nothing, but ms-swift '
                                'still divides the student\'s and the teacher\'s logits by this temperature before '
                                'the KL, so it scales the KD term (a red-team run logged a 9x larger llm_kd_loss at '
                                '0.3 than at 0.9); the playbook\'s note that it is ignored holds for sampling only')
        if rlhf.get('max_completion_length') is not None:
            cfg.warnings.append(f'{where(("rlhf", "max_completion_length"))}: has no effect in forward-only GKD '
                                '(`lmbda: 0`, `seq_kd: false`): nothing is generated')
    accumulation = cfg.gradient_accumulation_steps
    generation = rlhf.get('generation_batch_size')
    steps = rlhf.get('steps_per_generation') or (generation // (cfg.micro_batch * cfg.world_size) if generation
                                                 else accumulation)
    if steps % accumulation:
        key = 'steps_per_generation' if rlhf.get('steps_per_generation') else 'generation_batch_size'
        errors.append(f'{where(("rlhf", key))}: one generation covers {steps} micro-batches, not a multiple of '
                      f'gradient_accumulation_steps ({accumulation}); the loss of an optimizer step is averaged over '
                      'its micro-batches, so a generation must hold whole steps (leave both unset: one step)')


FAMILIES = {'qwen3_vl_moe': 'qwen3_vl'}
"""Model types whose vision input is another's (the MoE variant of Qwen3-VL reads Qwen3-VL's patches)."""


def gkd_model_problems(cfg: 'ProjectConfig') -> list[str]:
    """Student and teacher must share a vocabulary, and each distilled visual component must exist in the model.

    Read from the checkpoints' `config.json` and tokenizer files, so a hub id (not downloaded yet) is not checked.
    """
    student, teacher = cfg.model['model'], cfg.rlhf.get('teacher_model')
    problems = []
    student_cfg, teacher_cfg = checkpoint_config(student), checkpoint_config(teacher) if teacher else None
    if student_cfg and teacher_cfg:
        types = [c.get('model_type') for c in (student_cfg, teacher_cfg)]
        if FAMILIES.get(types[0], types[0]) != FAMILIES.get(types[1], types[1]):
            problems.append(f'{cfg.source}: `rlhf.teacher_model` {teacher} is a {types[1]} model and the student '
                            f'{student} a {types[0]} one; the teacher sees the student\'s batch (its image patches '
                            'and grid), which another family reads differently (a run stopped at step 1 with a shape '
                            'error), so take a teacher of the student\'s family')
        sizes = [c.get('text_config', c).get('vocab_size') for c in (student_cfg, teacher_cfg)]
        vocabs = [_tokenizer_vocab(p) for p in (student, teacher)]
        if sizes[0] != sizes[1] or (None not in vocabs and vocabs[0] != vocabs[1]):
            problems.append(f'{cfg.source}: `rlhf.teacher_model` {teacher} has a different tokenizer / vocabulary '
                            f'than the student {student} (vocab_size {sizes[1]} vs {sizes[0]}); the logits KD '
                            'compares token distributions, so both need the same tokenizer')
    vision = (student_cfg or {}).get('vision_config', {})
    for component in cfg.visual_kd if student_cfg else []:
        if component == 'deepstack' and not vision.get('deepstack_visual_indexes'):
            problems.append(f'{cfg.source}: `custom.visual_kd.deepstack`: the model {student} '
                            f'({student_cfg.get("model_type")}) has no DeepStack mergers; disable the component')
        elif component in ('vit', 'aligner') and not vision:
            problems.append(f'{cfg.source}: `custom.visual_kd.{component}`: the model {student} has no vision tower')
    return problems


def _tokenizer_vocab(path: str) -> dict[str, int] | None:
    """Token -> id of a checkpoint's tokenizer (`tokenizer.json`, added tokens included), None if it has none."""
    file = Path(path) / 'tokenizer.json'
    if not file.is_file():
        return None
    data = json.loads(file.read_text())
    vocab = dict(data.get('model', {}).get('vocab', {}))
    vocab.update({t['content']: t['id'] for t in data.get('added_tokens', [])})
    return vocab


def plugin_rewards(plugins: list[str], where: Callable[[tuple[str, ...]], str], errors: list[str]) -> list[str]:
    """The reward names ms-swift plugin files register (``orms['name'] = ...``, read without running the file)."""
    names = []
    for plugin in plugins:
        path = Path(plugin)
        try:
            tree = ast.parse(path.read_text(encoding='utf-8'), filename=str(path))
        except (OSError, UnicodeDecodeError, SyntaxError) as exc:
            errors.append(f'{where(("training", "external_plugins"))}: cannot read plugin {plugin}: {exc}')
            continue
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if (isinstance(target, ast.Subscript) and isinstance(target.slice, ast.Constant)
                        and isinstance(target.slice.value, str) and ast.unparse(target.value).endswith('orms')):
                    names.append(target.slice.value)
    return names


def _check_room_for_completions(cfg: 'ProjectConfig', where: Callable[[tuple[str, ...]], str], errors: list[str],
                                why: str) -> None:
    """Every prompt must fit in `max_length - max_completion_length` when the trainer generates: a completion room as
    long as the whole sequence otherwise showed up, after the model loaded, as one error per record against a
    limit of 0 or below."""
    max_length = cfg.global_max_length or cfg.template.get('max_length')
    default = GRPO_DEFAULTS[('rlhf', 'max_completion_length')] if cfg.rlhf.get('rlhf_type') == 'grpo' else (
        swift_fields.default('rlhf', 'max_completion_length'))  # the project's GRPO default, else ms-swift's
    room = cfg.rlhf.get('max_completion_length', default)
    if isinstance(max_length, int) and isinstance(room, int) and room >= max_length:
        key = 'global_max_length' if cfg.global_max_length is not None else 'template.max_length'
        errors.append(f'{where(("rlhf", "max_completion_length"))}: {room} tokens of room for each completion leave '
                      f'none for the prompt within `{key}` = {max_length} ({why}); lower `rlhf.max_completion_length` '
                      'or raise `global_max_length`')


def _check_grpo(cfg: 'ProjectConfig', where: Callable[[tuple[str, ...]], str], errors: list[str]) -> None:
    rlhf = cfg.rlhf
    _check_room_for_completions(cfg, where, errors, 'GRPO samples completions for every prompt')
    if cfg.custom.mode != 'summary':
        errors.append(f'{where(("custom", "mode"))}: GRPO scores summaries against each record\'s `summary`; set '
                      '`custom.mode: summary`')
    funcs = rlhf.get('reward_funcs') or []
    if not funcs:
        errors.append(f'{where(("rlhf", "rlhf_type"))}: GRPO needs `rlhf.reward_funcs`, e.g. [summary_format, '
                      f'summary_content_f1]; available: {", ".join(REWARDS)}')
    plugins = cfg.training.get('external_plugins') or []
    available = list(REWARDS) + plugin_rewards(plugins, where, errors)
    for name in funcs:
        if name not in available:
            errors.append(f'{where(("rlhf", "reward_funcs"))}: unknown reward {name!r}; available: '
                          f'{", ".join(available)} (a file in `training.external_plugins` adds its own with '
                          "`orms['name'] = MyReward`, as in ms-swift)")
    weights = rlhf.get('reward_weights')
    if weights is not None and len(weights) != len(funcs):
        errors.append(f'{where(("rlhf", "reward_weights"))}: {len(weights)} weights for {len(funcs)} reward '
                      'functions; give one weight per function')
    if rlhf.get('seeded_rollouts') and rlhf.get('use_vllm'):
        errors.append(f'{where(("rlhf", "seeded_rollouts"))}: seeds each completion in the transformers engine; vLLM '
                      'samples with its own per-process seeds, so unset one of the two')
    if cfg.template.get('truncation_strategy') == 'right':
        errors.append(f'{where(("template", "truncation_strategy"))}: GRPO supports only `left`; every prompt is '
                      'checked to fit before training, so nothing is truncated')
    micro, world = cfg.micro_batch, cfg.world_size
    generation = rlhf.get('generation_batch_size') or micro * cfg.gradient_accumulation_steps * world
    generations = rlhf.get('num_generations', swift_fields.default('rlhf', 'num_generations'))
    key = ('rlhf', 'generation_batch_size' if rlhf.get('generation_batch_size') else 'num_generations')
    if generations < 2:
        errors.append(f'{where(("rlhf", "num_generations"))}: GRPO compares completions of one prompt; use at least 2')
    elif generation % generations:
        errors.append(f'{where(key)}: num_generations ({generations}) must divide the generation batch '
                      f'({generation} trajectories: `rlhf.generation_batch_size`, by default per_device_train_batch_'
                      f'size x gradient accumulation x world size)')
    if rlhf.get('generation_batch_size') and rlhf['generation_batch_size'] % (micro * world):
        errors.append(f'{where(("rlhf", "generation_batch_size"))}: must be a multiple of per_device_train_batch_size '
                      f'({micro}) x world size ({world})')
    if cfg.tuner.get('train_type', swift_fields.default('tuner', 'tuner_type')) == 'lora' and rlhf.get('ref_model'):
        errors.append(f'{where(("rlhf", "ref_model"))}: with LoRA the reference policy is the base model with the '
                      'adapter switched off, which costs no second model; remove `rlhf.ref_model` (or train `full`)')
