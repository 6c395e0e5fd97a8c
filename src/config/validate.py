"""Turn a loaded config into a validated ``ProjectConfig``, collecting every problem before raising once.

Runs before anything heavy is imported or loaded, so a typo costs seconds, not a model load.
"""
from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import os
from pathlib import Path
from typing import Any

from . import swift_fields
from .augmentation import parse_augmentation
from .bounds import AT_LEAST_ONE, yaml_float_hint
from .errors import ConfigError
from .fusion import load_fusion_config
from .loader import KeyPath, LoadedConfig, dotted
from .model_type import model_type_of
from .module_names import entry_problem, matches_any, ties_embeddings, unmatched, weight_module_names
from .project import MONITOR, GKDSettings, ProjectConfig
from .prompts import prompt_problems
from .remote_code import remote_code_problems
from .reserved_text import reserved_text_problem
from .rlhf import check_rlhf, gkd_model_problems, resolve_rlhf
from .schema import (
    ALIASES,
    DEEPSPEED_PRESETS,
    FSDP_PRESETS,
    LIFTED,
    MODEL_KEYS,
    PATH_KEYS,
    PLACEHOLDERS,
    PROJECT_DEFAULTS,
    PROJECT_OWNED,
    PROJECT_SECTIONS,
    REMOVED_KEYS,
    SECTIONS,
    TOP_LEVEL_KEYS,
    TUNER_TYPE_KEY,
    section_fields,
)
from .types import Spec, describe, fits
from .values import value_problem
from .video import parse_video
from .visual_kd import parse_visual_kd

LENGTH_KEYS = (('model', 'max_model_len'), ('template', 'max_length'))  # where `global_max_length` fans out to
# Top-level keys that only hold YAML anchors for `<<: *name` merges (the `x-` convention of Docker Compose); they are
# not settings, so validation skips them.
ANCHOR_PREFIX = 'x-'
# Side of one merged patch (patch size x spatial merge) per model family: the smallest image the model takes. A
# `max_pixels` below its square cannot shrink an image further, so it would not do what it says.
MERGED_PATCH = {'qwen2_vl': 28, 'qwen2_5_vl': 28, 'qwen3_vl': 32, 'qwen3_vl_moe': 32}
GLOBAL_MAX_LENGTH = AT_LEAST_ONE


def _where(loaded: LoadedConfig, path: KeyPath) -> str:
    return f'{loaded.origin(path)}: `{dotted(path)}`'


def _latest_where(loaded: LoadedConfig, paths: list[KeyPath]) -> str:
    """``_where`` of the one of ``paths`` that the most specific file set (the key just written, which a message about
    several keys is most likely about); a message about a whole section named its first key's file instead."""
    given = [p for p in paths if p in loaded.origins] or paths
    return _where(loaded, max(given, key=lambda p: loaded.files.index(loaded.origin(p))))


def _sub_problems(loaded: LoadedConfig, prefix: KeyPath, problems: list[tuple[KeyPath, str]]) -> list[str]:
    """A sub-parser's problems, each naming the file that set the value it is about (not the mapping's first key's)."""
    return [f'{_where(loaded, prefix + path)}: {message}' for path, message in problems]


def _float_hint(value: Any, spec: Spec) -> str:
    """YAML 1.1 reads `1e-4` (no dot) as a string; say how to write it when a float was expected."""
    return yaml_float_hint(value) if fits(1.5, spec) else ''


def _suggest(key: str, section: str) -> str:
    close = difflib.get_close_matches(key, list(section_fields(section)), n=1, cutoff=0.6)
    if close:
        return f'; did you mean `{section}.{close[0]}`?'
    for other in SECTIONS:
        if other != section and key in section_fields(other):
            return f'; it belongs in section `{other}`'
    return ''


def _resolve_path(value: Any, yaml_file: Path, key: KeyPath) -> Any:
    """Resolve a path relative to the YAML that set it; a hub model id (``Org/Name`` that is no local path) stays."""
    if value is None or isinstance(value, dict):  # an inline mapping resolves its own paths
        return value
    if isinstance(value, list):
        return [_resolve_path(v, yaml_file, key) for v in value]
    text = os.path.expanduser(str(value))
    if key in (('deepspeed', 'config'), ('training', 'fsdp')) and not text.endswith('.json'):
        return value  # an ms-swift preset name such as zero2 or fsdp2
    candidate = (yaml_file.parent / text).resolve()
    is_local = text.startswith(('.', '/')) or candidate.exists() or key not in MODEL_KEYS
    return str(candidate) if is_local else value


def validate(loaded: LoadedConfig) -> ProjectConfig:
    """Check every key, type and cross-field rule; raise one ``ConfigError`` listing all problems."""
    errors: list[str] = []
    raw = {k: v for k, v in loaded.data.items() if not str(k).startswith(ANCHOR_PREFIX)}
    for key in raw:
        if key not in TOP_LEVEL_KEYS:
            close = difflib.get_close_matches(str(key), TOP_LEVEL_KEYS, n=1)
            home = next((section for section in SECTIONS if str(key) in section_fields(section)), None)
            hint = (f'; it belongs in a section: write it as `{home}.{key}` (`{home}: {{{key}: ...}}`)' if home else
                    f'; did you mean `{close[0]}`?' if close else f'; valid sections: {", ".join(TOP_LEVEL_KEYS)}')
            errors.append(f'{_where(loaded, (str(key), ))}: unknown top-level key{hint}')

    cfg = ProjectConfig(source=loaded.files[-1], world_size=world_size())
    aliased: list[tuple[KeyPath, Any]] = []  # applied once every section is read, whatever their order
    for section in SECTIONS:
        values = raw.get(section) or {}
        if not isinstance(values, dict):
            errors.append(f'{_where(loaded, (section, ))}: must be a mapping, got {type(values).__name__}')
            continue
        known = section_fields(section)
        clean: dict[str, Any] = {}
        for key, value in values.items():
            path = (section, str(key))
            if key in REMOVED_KEYS:
                errors.append(f'{_where(loaded, path)}: {REMOVED_KEYS[key]}')
            elif path in PLACEHOLDERS and value == PLACEHOLDERS[path]:
                continue  # the value the project sets itself
            elif path in PROJECT_OWNED:
                errors.append(f'{_where(loaded, path)}: not settable here: {PROJECT_OWNED[path]}')
            elif path in ALIASES:
                aliased.append((path, value))
            elif key not in known:
                errors.append(f'{_where(loaded, path)}: unknown key{_suggest(str(key), section)}')
            elif not fits(value, known[key]):
                errors.append(f'{_where(loaded, path)}: expected {describe(known[key])}, got {value!r}'
                              f'{_float_hint(value, known[key])}')
            elif (problem := value_problem(section, str(key), value, known[key])) is not None:
                errors.append(f'{_where(loaded, path)}: {problem}')
            else:
                clean[key] = _resolve_path(value, loaded.origin(path), path) if path in PATH_KEYS else value
        if section in PROJECT_SECTIONS:
            setattr(cfg, section, PROJECT_SECTIONS[section](**clean))
        else:
            setattr(cfg, section, clean)
    for path, value in aliased:
        _take_alias(loaded, cfg, path, value, errors)

    _check_lengths(loaded, cfg, errors)
    _check_cross_fields(loaded, cfg, errors)
    if errors:
        raise ConfigError(errors)
    _resolve(cfg)
    _attention_fallback(loaded, cfg)
    return cfg


# `model.attn_impl` values that need a flash-attn package, and the module each imports.
FLASH_ATTENTION = {'flash_attn': 'flash_attn', 'flash_attention_2': 'flash_attn',
                   'flash_attention_3': 'flash_attn_interface'}


def _attention_fallback(loaded: LoadedConfig, cfg: ProjectConfig) -> None:
    """A config that asks for flash-attn runs with PyTorch's SDPA where flash-attn is not installed (CPU machines,
    GPU nodes without the package), with a warning that says so, instead of failing once the model loads."""
    impl = cfg.model.get('attn_impl')
    if impl in FLASH_ATTENTION and importlib.util.find_spec(FLASH_ATTENTION[impl]) is None:
        cfg.model['attn_impl'] = 'sdpa'
        cfg.warnings.append(f'{_where(loaded, ("model", "attn_impl"))}: {impl!r} needs the flash-attn package, which '
                            'is not installed here; training with `sdpa` (PyTorch\'s scaled-dot-product attention: '
                            'the same results, more memory on long sequences). Install flash-attn to use it.')


def _take_alias(loaded: LoadedConfig, cfg: ProjectConfig, path: KeyPath, value: Any, errors: list[str]) -> None:
    """Put the value of a playbook spelling (`rlhf.temperature`) where ms-swift reads it (`training.temperature`)."""
    section, key = ALIASES[path]
    spec = section_fields(section)[key]
    target = getattr(cfg, section)
    if not fits(value, spec):
        errors.append(f'{_where(loaded, path)}: expected {describe(spec)}, got {value!r}')
    elif (problem := value_problem(section, key, value, spec)) is not None:
        errors.append(f'{_where(loaded, path)}: {problem}')
    elif key in target and target[key] != value:
        # One file setting both spellings differently is a clash; otherwise the more specific file (the overlay)
        # wins, as for any other key.
        alias_file, own_file = (loaded.files.index(loaded.origin(p)) for p in (path, (section, key)))
        if alias_file == own_file:
            errors.append(f'{_where(loaded, path)} = {value!r} and {_where(loaded, (section, key))} = '
                          f'{target[key]!r} are the same setting (`{section}.{key}`); keep one')
        elif alias_file > own_file:
            target[key] = value
    else:
        target[key] = value


def _check_lengths(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    """`global_max_length` is the one home of the sequence length; it fans out to model and template."""
    length = loaded.data.get('global_max_length')
    if length is None:
        return
    if not fits(length, {'type': 'int'}) or not GLOBAL_MAX_LENGTH.admits(length):
        errors.append(f'{_where(loaded, ("global_max_length", ))}: expected a positive int, got {length!r}')
        return
    cfg.global_max_length = length
    for section, key in LENGTH_KEYS:
        current = getattr(cfg, section).get(key)
        if current is not None and current != length:
            errors.append(f'{_where(loaded, (section, key))} = {current} conflicts with `global_max_length` = '
                          f'{length} ({loaded.origin(("global_max_length", ))}); set only `global_max_length`')


def _resolve(cfg: ProjectConfig) -> None:
    """Fill the project's defaults and derived values into a config that passed every check."""
    for (section, key), value in PROJECT_DEFAULTS.items():
        getattr(cfg, section).setdefault(key, value)
    if cfg.global_max_length is not None:
        for section, key in LENGTH_KEYS:
            getattr(cfg, section)[key] = cfg.global_max_length
    resolve_rlhf(cfg)
    _lift(cfg)


def _lift(cfg: ProjectConfig) -> None:
    """Move the project's keys out of ms-swift's sections into their typed homes (``RunSettings``, ``GKDSettings``):
    the sections keep only what ms-swift reads. A null keeps the default."""
    for (section, key), name in LIFTED.items():
        value = getattr(cfg, section).pop(key, None)
        if value is not None:
            setattr(cfg.settings, name, value)
    cfg.gkd = GKDSettings(float(cfg.settings.llm_kd_weight), cfg.visual_kd, cfg.custom.trainer_variant == MONITOR)
    # The sub-mappings of `custom` live on parsed (`augmentation`, `video`, `visual_kd`, `fusion`), not beside them.
    cfg.custom = dataclasses.replace(cfg.custom, augmentation=None, video=None, visual_kd=None, fusion_config=None)


def _check_cross_fields(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    _check_data_sources(loaded, cfg, errors)
    cfg.augmentation, problems = parse_augmentation(cfg.custom.augmentation)
    errors += _sub_problems(loaded, ('custom', 'augmentation'), problems)
    cfg.visual_kd, problems = parse_visual_kd(cfg.custom.visual_kd)
    errors += _sub_problems(loaded, ('custom', 'visual_kd'), problems)
    prompt_maps = [(('custom', 'prompts'), cfg.custom.prompts or {})]
    variants = cfg.custom.summary_prompt_variants
    where = _where(loaded, ('custom', 'summary_prompt_variants'))
    if variants is not None and (len(variants) < 2 or not all(isinstance(v, str) and v.strip() for v in variants)):
        errors.append(f'{where}: give at least two non-empty prompts')
    elif variants is not None and (problem := next(filter(None, map(reserved_text_problem, variants)), None)):
        errors.append(f'{where}: {problem}')
    elif variants is not None and cfg.custom.mode != 'summary':
        errors.append(f'{where}: applies to `custom.mode: summary` only')
    prompt_maps += [(('custom', 'dataset_prompts', str(name)), value)
                    for name, value in (cfg.custom.dataset_prompts or {}).items()]
    for path, prompts in prompt_maps:
        errors += _sub_problems(loaded, path, prompt_problems(prompts))
    if cfg.custom.coord_format not in (None, cfg.family_coord_format):
        cfg.warnings.append(f'{_where(loaded, ("custom", "coord_format"))}: {cfg.custom.coord_format!r} is not the '
                            f'convention the base model was trained on ({cfg.family_coord_format!r}); remove the key '
                            'to follow the model')
    cfg.video, problems = parse_video(cfg.custom.video)
    errors += _sub_problems(loaded, ('custom', 'video'), problems)
    _check_pixels(loaded, cfg, errors)
    _check_scale_out(loaded, cfg, errors)
    _check_silent_no_ops(loaded, cfg, errors)
    check_rlhf(cfg, lambda path: _where(loaded, path), errors)
    if not cfg.model.get('model'):
        errors.append(f'{loaded.files[-1]}: `model.model` is required (a model directory or hub id)')


def _check_pixels(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    """`template.max_pixels` and `custom.video.max_pixels` of at least one merged patch of the model's family."""
    side = MERGED_PATCH.get(model_type_of(cfg.model) or '')
    if side is None:
        return
    for path, value in ((('template', 'max_pixels'), cfg.template.get('max_pixels')),
                        (('custom', 'video', 'max_pixels'), cfg.video.max_pixels)):
        if value is not None and value < side * side:
            errors.append(f'{_where(loaded, path)}: {value} is less than one {side}x{side} merged patch '
                          f'({side * side} pixels), the smallest image {model_type_of(cfg.model)} takes; every '
                          f'image would still get one patch. Use at least {side * side}')


def _top_file_sets(loaded: LoadedConfig, a: KeyPath, b: KeyPath) -> KeyPath | None:
    """Of two keys that set one thing, the one the config being run sets itself (its own file, not a parent's), when
    exactly one is set there: what the user just wrote over the recipe. None otherwise."""
    top = loaded.files[-1]
    mine = [path for path in (a, b) if path in loaded.origins and loaded.origin(path) == top]
    return mine[0] if len(mine) == 1 else None


def _check_run_length(loaded: LoadedConfig, cfg: ProjectConfig) -> None:
    """`max_steps` (above 0) overrides `num_train_epochs` in transformers. When the config being run sets one of them
    over a parent's other, its own wins (the playbook's `num_train_epochs: 3` pasted over the smoke recipe's
    `max_steps: 4` trained 4 steps); otherwise transformers' rule holds, and a warning says so."""
    training = cfg.training
    steps, epochs = training.get('max_steps'), training.get('num_train_epochs')
    if not isinstance(steps, int) or steps <= 0 or epochs is None:
        return
    steps_path, epochs_path = ('training', 'max_steps'), ('training', 'num_train_epochs')
    if _top_file_sets(loaded, steps_path, epochs_path) == epochs_path:
        cfg.warnings.append(f'{_where(loaded, epochs_path)}: replaces the `training.max_steps: {steps}` of '
                            f'{loaded.origin(steps_path)}: the run trains {epochs} epoch(s)')
        training['max_steps'] = -1  # transformers' "not set"
    else:
        cfg.warnings.append(f'{_where(loaded, steps_path)}: {steps} steps override `num_train_epochs: {epochs}` '
                            f'({loaded.origin(epochs_path)}): the run stops after {steps} steps, whatever the epoch')


def _check_silent_no_ops(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    """Settings that would be accepted and then do nothing, or something else."""
    _check_run_length(loaded, cfg)
    strategy = cfg.training.get('eval_strategy')
    if strategy is not None and str(strategy) != 'no' and not cfg.has_validation:
        unevaluated = [s.name for s in cfg.fusion.sources if s.val_jsonl is not None] if cfg.fusion else []
        hint = (f'; the fusion sources with a `val_jsonl` ({", ".join(unevaluated)}) are not in `eval_sources` '
                '(by default the `domain: target` ones)' if unevaluated else
                ': give `custom.val_jsonl` (or a fusion source\'s `val_jsonl`)')
        cfg.warnings.append(f'{_where(loaded, ("training", "eval_strategy"))}: {strategy!r}, but the run has no '
                            f'validation records, so ms-swift turns evaluation off{hint}')
    if cfg.tuner.get('resume_from_checkpoint'):
        where = _where(loaded, ('tuner', 'resume_from_checkpoint'))
        if cfg.training.get('resume_from_checkpoint'):
            errors.append(f'{where}: starts a new stage from a checkpoint\'s weights (step 0), while '
                          '`training.resume_from_checkpoint` continues an interrupted run; set one')
        if cfg.tuner.get('adapters'):
            errors.append(f'{where}: with `tuner.adapters` the run would start from two sets of weights; set one')
    for key in ('target_modules', 'modules_to_save'):
        entries = cfg.tuner.get(key)
        for entry in entries if isinstance(entries, list) else []:
            if (problem := entry_problem(entry)) is not None:
                errors.append(f'{_where(loaded, ("tuner", key))}: {problem}')
    if cfg.global_max_length is None and cfg.template.get('max_length') is None:
        errors.append(f'{loaded.files[-1]}: set `global_max_length` (the longest sample in tokens: prompt, image '
                      'tokens and answer); without it ms-swift takes the model\'s own limit (262144 for Qwen3-VL), so '
                      'an over-long record is never caught and memory is sized for the worst case')
    frozen = cfg.frozen
    regex = cfg.tuner.get('target_regex')
    # each visual KD component's features come out of the ViT and, past it, the aligner's mergers: with all of those
    # frozen (no adapter on them either) the student's features never move and the term is a constant
    upstream = {'vit': ('vit', ), 'aligner': ('vit', 'aligner'), 'deepstack': ('vit', 'aligner')}
    # modules named to train beside the freeze flags (they may be upstream of a KD component, or all that trains)
    named = any(cfg.tuner.get(key) for key in ('modules_to_save', 'trainable_parameters', 'trainable_parameters_regex'))
    for component in cfg.visual_kd if not regex and not named else ():  # named modules may be upstream: trained
        if all(frozen[part] for part in upstream.get(component, ())):
            flags = ', '.join(f'`tuner.freeze_{part}: true`' for part in upstream[component])
            unfreeze = ' or '.join(f'`tuner.freeze_{part}: false`' for part in upstream[component])
            errors.append(f'{_where(loaded, ("custom", "visual_kd"))}: `{component}` distils features that nothing '
                          f'before them trains ({flags}, no adapter there): the student\'s features never move, so '
                          f'the term is a constant that teaches nothing; set {unfreeze}, or disable `{component}`')
    _check_something_trains(loaded, cfg, frozen, named, errors)
    _check_best_model(loaded, cfg, errors)
    if str(cfg.training.get('save_strategy')) == 'no':
        cfg.warnings.append(f'{_where(loaded, ("training", "save_strategy"))}: \'no\': this run saves no weights, so '
                            'what it trains is gone when it ends (only the logs stay)')


def _check_something_trains(loaded: LoadedConfig, cfg: ProjectConfig, frozen: dict[str, bool], named: bool,
                            errors: list[str]) -> None:
    """A run with nothing to train stops after its model loads (an empty optimizer, an adapter with no module)."""
    tuner = cfg.tuner
    train_type = tuner.get(TUNER_TYPE_KEY) or swift_fields.default('tuner', 'tuner_type') or 'lora'
    regex = tuner.get('target_regex')
    where = _latest_where(loaded, [('tuner', key) for key in ('freeze_llm', 'freeze_vit', 'freeze_aligner',
                                                              TUNER_TYPE_KEY)])
    if all(frozen.values()) and not named and not regex and (
            train_type == 'full' or tuner.get('target_modules') in (None, ['all-linear'])):
        errors.append(f'{where}: `freeze_llm`, `freeze_vit` and `freeze_aligner` are all true and nothing else is '
                      'named to train (`modules_to_save`, `trainable_parameters`), so the run would have no trainable '
                      'parameter; unfreeze the component to train')
    if regex == '^$':
        where = _where(loaded, ('tuner', 'target_regex'))
        if not tuner.get('modules_to_save'):
            errors.append(f'{where}: `target_regex: \'^$\'` puts the adapter on no module, and no `modules_to_save` '
                          'names what trains instead, so nothing would train; name the modules in `modules_to_save` '
                          '(the aligner-only recipe: [model.visual.merger, model.visual.deepstack_merger_list])')
        if train_type != 'lora' or tuner.get('use_dora'):
            what = '`use_dora: true`' if tuner.get('use_dora') else f'`{TUNER_TYPE_KEY}: {train_type}`'
            where = _latest_where(loaded, [('tuner', 'target_regex'), ('tuner', 'use_dora' if tuner.get('use_dora')
                                                                        else TUNER_TYPE_KEY)])
            errors.append(f'{where}: {what} with `target_regex: \'^$\'` has no module to act on (only '
                          '`modules_to_save` train); to adapt the aligner with it, give it modules: `target_modules: '
                          '[all-linear]` with `freeze_aligner: false` (and the other components frozen)')


def _check_best_model(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    """`load_best_model_at_end` needs a checkpoint at every evaluation (transformers refuses otherwise, in a
    traceback that names neither key)."""
    training = cfg.training
    metric = str(training.get('metric_for_best_model') or '')
    # what an SFT evaluation logs, and a GKD one (its terms `sft_loss`, `llm_kd_loss`, `vision_kd_loss` end in
    # `_loss`); GRPO's reward names and generation metrics (`eval_metric`, `predict_with_generate`) are not listed
    kind = {None: 'an SFT', 'gkd': 'a GKD'}.get(cfg.rlhf.get('rlhf_type'))
    listed = kind is not None and not training.get('eval_metric') and not training.get('predict_with_generate')
    name = metric.removeprefix('eval_')
    if metric and listed and name not in ('loss', 'token_acc') and not name.endswith(('_loss', '_token_acc')):
        terms = ', `sft_loss`, `llm_kd_loss`, `vision_kd_loss`' if kind == 'a GKD' else ''
        errors.append(f'{_where(loaded, ("training", "metric_for_best_model"))}: {metric!r} is not a metric {kind} '
                      f'evaluation logs (`loss`, `token_acc`{terms}, and per dataset `<name>_loss`, '
                      '`<name>_token_acc`); transformers would stop with a KeyError at the first evaluation, after '
                      'the steps before it')
    if not training.get('load_best_model_at_end'):
        return

    def value(key: str, fallback: str | None = None) -> Any:  # ms-swift: evaluation follows saving when unset
        if training.get(key) is not None:
            return training[key]
        return swift_fields.default('training', key) if fallback is None else value(fallback)

    save, evaluate = str(value('save_strategy')), str(value('eval_strategy', 'save_strategy'))
    where = _where(loaded, ('training', 'load_best_model_at_end'))
    if save == 'best':  # a checkpoint whenever the metric improves: any evaluation schedule
        return
    if save != evaluate:
        errors.append(f'{where}: needs a checkpoint at every evaluation: `save_strategy` ({save}) and '
                      f'`eval_strategy` ({evaluate}) must be the same (or `save_strategy: best`)')
        return
    saving, evaluating = value('save_steps'), value('eval_steps', 'save_steps')
    if save != 'steps' or not saving % evaluating:
        return
    # transformers' own test (TrainingArguments): fractions of the run compare in millionths, never mixed with steps
    if (saving < 1) != (evaluating < 1):
        errors.append(f'{where}: needs a checkpoint at every evaluation: `save_steps` ({saving}) and `eval_steps` '
                      f'({evaluating}) cannot promise one, a fraction of the run beside a step count; give both as '
                      'steps or both as fractions')
    elif saving >= 1 or (saving * 1_000_000) % (evaluating * 1_000_000):
        errors.append(f'{where}: needs a checkpoint at every evaluation: `save_steps` ({saving}) must be a multiple of '
                      f'`eval_steps` ({evaluating})')


def _check_data_sources(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    """Training data comes from `custom.train_jsonl` or from `custom.fusion_config`, never both."""
    custom = cfg.custom
    if custom.fusion_config is None:
        if custom.train_jsonl is None:
            errors.append(f'{loaded.files[-1]}: `custom.train_jsonl` (the training records) or '
                          '`custom.fusion_config` (a mixture of sources) is required')
        return
    for key in ('train_jsonl', 'val_jsonl'):
        if getattr(custom, key) is not None:
            errors.append(f'{_where(loaded, ("custom", key))}: with `custom.fusion_config` the sources name their own '
                          f'files; remove `custom.{key}`')
    try:
        cfg.fusion = load_fusion_config(custom.fusion_config, loaded.origin(('custom', 'fusion_config')).parent)
    except ConfigError as exc:
        errors.extend(f'{_where(loaded, ("custom", "fusion_config"))}: {p}' for p in exc.problems)


def check_inputs_exist(cfg: ProjectConfig) -> None:
    """The files a run reads must exist; checked by the entrypoint, not by `validate`, so that a config whose
    inputs come from an earlier run (stage 2 of a recipe) still validates on its own."""
    errors = []
    model = Path(str(cfg.model['model']))
    if model.is_absolute() and not model.exists() and not cfg.custom.build_tiny_model:
        errors.append(f'{cfg.source}: `model.model`: directory {model} does not exist')
    start = cfg.settings.start_from_checkpoint
    if start and not Path(start).is_dir():
        errors.append(f'{cfg.source}: `tuner.resume_from_checkpoint`: checkpoint {start} does not exist (run the '
                      'earlier stage first)')
    resume = cfg.training.get('resume_from_checkpoint')
    if resume and not Path(str(resume)).is_dir():
        errors.append(f'{cfg.source}: `training.resume_from_checkpoint`: checkpoint {resume} does not exist (give a '
                      'checkpoint-N folder of the run to continue)')
    for key in ('train_jsonl', 'val_jsonl'):
        path = getattr(cfg.custom, key)
        if path is not None and not Path(path).is_file():
            errors.append(f'{cfg.source}: `custom.{key}`: file {path} does not exist')
    if cfg.fusion is not None:
        errors += cfg.fusion.missing_files()
    if cfg.rlhf.get('rlhf_type') == 'gkd':
        errors += gkd_model_problems(cfg)
    for path, key, trusted in cfg.model_folders():
        errors += remote_code_problems(path, key, trusted)
    if cfg.deepspeed.enabled and importlib.util.find_spec('deepspeed') is None:
        errors.append(f'{cfg.source}: `deepspeed.enabled`: DeepSpeed is not installed in this environment; install '
                      "the project's GPU extra (`pip install -e '.[gpu]'`, deepspeed 0.19.8) or set `enabled: false`")
    modules = weight_module_names(cfg.model['model'])
    for key in ('target_modules', 'modules_to_save') if modules else ():
        missing = unmatched(list(cfg.tuner.get(key) or []), modules)
        if missing:
            errors.append(f'{cfg.source}: `tuner.{key}`: {", ".join(map(repr, missing))} match no module of '
                          f'{cfg.model["model"]}; PEFT would skip them without a word')
    targets = [e for e in cfg.tuner.get('target_modules') or [] if isinstance(e, str)]
    if matches_any(targets, 'lm_head') and ties_embeddings(cfg.model['model']):
        errors.append(f'{cfg.source}: `tuner.target_modules`: `lm_head` of {cfg.model["model"]} shares its weight with '
                      'the input embeddings (`tie_word_embeddings: true`), so a LoRA on it merges into both: `swift '
                      'export --merge_lora` and stage 2 would give another model than the one trained. Leave `lm_head` '
                      'out of the list')
    if errors:
        raise ConfigError(errors)


def world_size() -> int:
    """Processes in this run: torchrun's WORLD_SIZE, 1 for a plain `python -m src.sft` (read once, by `validate`)."""
    return int(os.environ.get('WORLD_SIZE', '1'))


def _check_scale_out(loaded: LoadedConfig, cfg: ProjectConfig, errors: list[str]) -> None:
    """Batch arithmetic and distributed back-ends: combinations that would fail (or mislead) after launch."""
    training = cfg.training
    ebs = training.get('effective_batch_size')
    if ebs is not None and training.get('gradient_accumulation_steps') is not None:
        # Two spellings of one knob: the one the config being run sets over a parent's other wins (scale.md's
        # `effective_batch_size` over a shipped recipe's accumulation); anything else says two things at once.
        ebs_path, steps_path = ('training', 'effective_batch_size'), ('training', 'gradient_accumulation_steps')
        won = _top_file_sets(loaded, ebs_path, steps_path)
        if won is None:
            where = (f'{loaded.origin(ebs_path)} and {loaded.origin(steps_path)}'
                     if loaded.origin(ebs_path) != loaded.origin(steps_path) else loaded.origin(ebs_path))
            errors.append(f'{where}: `training.effective_batch_size` and `training.gradient_accumulation_steps` both '
                          f'set the global batch; set one (in {loaded.files[-1].name}: the other as null)')
        else:
            lost = steps_path if won == ebs_path else ebs_path
            cfg.warnings.append(f'{_where(loaded, won)}: replaces the `training.{lost[1]}` of {loaded.origin(lost)} '
                                '(the two set one thing: the global batch)')
            training.pop(lost[1])
            ebs = training.get('effective_batch_size')
    if ebs is not None:
        micro, world = cfg.micro_batch, cfg.world_size
        where = _where(loaded, ('training', 'effective_batch_size'))
        if ebs <= 0 or ebs % (micro * world):
            errors.append(f'{where}: {ebs} is not a positive multiple of per_device_train_batch_size ({micro}) x '
                          f'world size ({world}) = {micro * world}')
    if training.get('llm_lr') is not None and training.get('learning_rate') is None and (
            training.get('vit_lr') is None or training.get('aligner_lr') is None):
        errors.append(f'{_where(loaded, ("training", "llm_lr"))}: with `llm_lr`, set `learning_rate` (the default of '
                      '`vit_lr` and `aligner_lr`) or both `vit_lr` and `aligner_lr`')
    if training.get('ddp_backend') and cfg.world_size == 1:
        errors.append(f'{_where(loaded, ("training", "ddp_backend"))}: applies to multi-process runs, and this one has '
                      'one process (WORLD_SIZE unset); launch it with `NPROC_PER_NODE=2 scripts/train.sh CONFIG` (or '
                      'torchrun), or remove the key (CPU runs pick gloo by themselves)')
    fsdp = training.get('fsdp')
    if cfg.deepspeed.enabled:
        preset = cfg.deepspeed.config
        where = _where(loaded, ('deepspeed', 'config'))
        if fsdp:
            errors.append(f'{_where(loaded, ("training", "fsdp"))}: FSDP and DeepSpeed exclusive; disable one '
                          '(`deepspeed.enabled: false` or remove `training.fsdp`)')
        if not preset.endswith('.json') and preset not in DEEPSPEED_PRESETS:
            errors.append(f'{where}: unknown preset {preset!r}; use one of {", ".join(DEEPSPEED_PRESETS)} or a '
                          'JSON path')
        elif preset.endswith('.json') and not Path(preset).is_file():
            errors.append(f'{where}: DeepSpeed config {preset} does not exist')
        if _zero_stage(preset) == 3 and (cfg.model.get('quant_method') or cfg.model.get('quant_bits')):
            errors.append(f'{where}: ZeRO-3 cannot partition quantized (bitsandbytes / GPTQ) weights; use zero2, or '
                          'train without `model.quant_*`')
        if cfg.model.get('device_map'):
            errors.append(f'{_where(loaded, ("model", "device_map"))}: DeepSpeed places the model itself; remove '
                          '`model.device_map`')
    if fsdp and fsdp not in FSDP_PRESETS and not (str(fsdp).endswith('.json') and Path(fsdp).is_file()):
        errors.append(f'{_where(loaded, ("training", "fsdp"))}: use `fsdp2` or an existing FSDP JSON config, '
                      f'got {fsdp!r}')
    if fsdp and 'WORLD_SIZE' not in os.environ:
        errors.append(f'{_where(loaded, ("training", "fsdp"))}: FSDP shards the model across the processes torchrun '
                      'starts, and this run was not started by torchrun (WORLD_SIZE unset); launch it with '
                      '`NPROC_PER_NODE=2 scripts/train.sh CONFIG` (or `torchrun --nproc_per_node 1` on one GPU), or '
                      'remove the key')
    if fsdp and training.get('gradient_checkpointing'):
        errors.append(f'{_where(loaded, ("training", "gradient_checkpointing"))}: under FSDP2 use its activation '
                      'checkpointing (on in the `fsdp2` preset) instead of `gradient_checkpointing`')


def _zero_stage(preset: str) -> int | None:
    if preset.startswith('zero') and preset[4:5].isdigit():
        return int(preset[4])
    if preset.endswith('.json') and Path(preset).is_file():
        import json
        return json.loads(Path(preset).read_text()).get('zero_optimization', {}).get('stage')
    return None
