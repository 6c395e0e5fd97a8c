"""Adapter targets that honour the freeze flags, whatever form `tuner.target_modules` takes.

ms-swift applies `tuner.freeze_llm` / `freeze_vit` / `freeze_aligner` to an adapter only through `all-linear`, which it
expands into a regex over the unfrozen components. A list of module names goes to PEFT as it is: `[q_proj, v_proj,
qkv]` with `freeze_vit: true` put LoRA on the ViT's `qkv`, and the playbook's `lm_head` recipe (an explicit list with
the inherited `freeze_vit: true`) adapted the whole ViT. Here such a list becomes the regex PEFT matches the same names
with, restricted to the components the flags leave unfrozen (ms-swift's own component prefixes for the model type), and
each entry that names modules of a frozen component gets a notice. `all-linear` beside other names is refused:
ms-swift drops the other names for a multimodal model.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..config import ConfigError, ProjectConfig
from ..config.model_type import model_type_of
from ..config.module_names import KEYWORDS, matches, weight_module_names
from ..config.schema import TUNER_TYPE_KEY

COMPONENTS = ('llm', 'vit', 'aligner')
# How transformers renames the weights of a Qwen2-VL / Qwen2.5-VL checkpoint saved in the older layout (`visual.*`,
# `model.layers.*`) when it loads them (conversion_mapping.py, "Qwen2VLForConditionalGeneration"): the module names
# the adapter is matched against are the loaded ones.
LEGACY_RENAMES = ((re.compile(r'^visual(?=\.|$)'), 'model.visual'),
                  (re.compile(r'^model(?!\.(?:language_model|visual))(?=\.|$)'), 'model.language_model'))
FLAGS = {component: f'freeze_{component}' for component in COMPONENTS}
NAMES = {'llm': 'LLM', 'vit': 'ViT', 'aligner': 'aligner'}


@dataclass(frozen=True)
class Layout:
    """ms-swift's module prefixes of a multimodal model type: the aligner sits inside the vision tower."""

    llm: tuple[str, ...]
    vision_tower: tuple[str, ...]
    aligner: tuple[str, ...]

    @classmethod
    def of(cls, model_type: str | None) -> 'Layout | None':
        from swift.model import MODEL_MAPPING

        meta = MODEL_MAPPING.get(model_type or '')
        arch = getattr(meta, 'model_arch', None)
        if arch is None or not getattr(arch, 'vision_tower', None):
            return None

        def listed(value: Any) -> tuple[str, ...]:
            return tuple([value] if isinstance(value, str) else value or [])

        return cls(listed(arch.language_model), listed(arch.vision_tower), listed(arch.aligner))

    def component(self, name: str) -> str | None:
        """`aligner`, `vit` or `llm` for a module name (the aligner first: it is inside the vision tower)."""
        for component, prefixes in (('aligner', self.aligner), ('vit', self.vision_tower), ('llm', self.llm)):
            if any(name == p or name.startswith(p + '.') for p in prefixes):
                return component
        return None

    def regex(self, entries: list[str], frozen: dict[str, bool]) -> str:
        """PEFT's match of ``entries`` (a module name equal to an entry or ending in `.<entry>`), limited to the
        modules of the unfrozen components."""
        allowed = [p for c, prefixes in (('llm', self.llm), ('vit', self.vision_tower), ('aligner', self.aligner))
                   if not frozen[c] for p in prefixes]
        excluded = list(self.aligner) if frozen['aligner'] and not frozen['vit'] else []
        if frozen['vit'] and not frozen['aligner']:
            allowed = [p for p in allowed if p not in self.vision_tower]

        def alternatives(names: list[str]) -> str:
            return '|'.join(re.escape(n) for n in names)

        negative = f'(?!(?:{alternatives(excluded)})(?:\\.|$))' if excluded else ''
        return f'^{negative}(?=(?:{alternatives(allowed)})(?:\\.|$))(?:.*\\.)?(?:{alternatives(entries)})$'


def adapter_targets(cfg: ProjectConfig) -> tuple[dict[str, Any], list[str]]:
    """(ms-swift keyword arguments to set, notices) for the run's adapter targets; raises ``ConfigError`` for a
    combination ms-swift would not apply as written."""
    entries = cfg.tuner.get('target_modules')
    if cfg.tuner.get(TUNER_TYPE_KEY, 'lora') != 'full' and cfg.tuner.get('target_regex'):
        return {}, _frozen_regex_notices(cfg)
    if cfg.tuner.get(TUNER_TYPE_KEY, 'lora') == 'full' or not isinstance(entries, list) or not entries:
        return {}, []
    names = [str(e) for e in entries]
    others = [e for e in names if e not in KEYWORDS]
    if 'all-linear' in names:
        if others:
            raise ConfigError([f'{cfg.source}: `tuner.target_modules`: {", ".join(map(repr, others))} beside '
                               '`all-linear`: for a multimodal model ms-swift expands `all-linear` alone and drops '
                               'the other names. List every module instead (the playbook\'s lm_head recipe: '
                               '[q_proj, k_proj, v_proj, o_proj, up_proj, gate_proj, down_proj, qkv, proj, linear_fc1, '
                               'linear_fc2, lm_head]); the freeze flags still apply'])
        return {}, []
    if len(others) != len(names):  # other keywords (all-embedding, ...) are ms-swift's to expand
        return {}, []
    layout = Layout.of(model_type_of(cfg.model))
    frozen = cfg.frozen
    if layout is None or not any(frozen.values()):
        return {}, []
    if all(frozen.values()):
        raise ConfigError([f'{cfg.source}: `tuner.target_modules`: `tuner.freeze_llm`, `freeze_vit` and '
                           '`freeze_aligner` are all true, so the adapter has no module to go on; unfreeze the '
                           'component to adapt'])
    modules = loaded_names(weight_module_names(cfg.model['model']) or set())
    regex = re.compile(layout.regex(others, frozen))
    notices = _frozen_entry_notices(cfg, layout, modules, others, frozen)
    if modules and not any(regex.fullmatch(name) for name in modules):
        unfrozen = ' and '.join(NAMES[c] for c in COMPONENTS if not frozen[c])
        raise ConfigError([f'{cfg.source}: `tuner.target_modules`: no entry names a module of the {unfrozen}, the '
                           'only component(s) the freeze flags leave to adapt, so the adapter would have no module:'
                           + ''.join(f'\n    {n.removeprefix("notice: ")}' for n in notices)])
    return {'target_regex': regex.pattern}, notices


def _frozen_regex_notices(cfg: ProjectConfig) -> list[str]:
    """A `target_regex` goes to PEFT as written, so the freeze flags do not limit it: one notice per frozen component
    it matches modules of (the checkpoint's names, when it is local), so a flag is never ignored without a word."""
    layout, frozen = Layout.of(model_type_of(cfg.model)), cfg.frozen
    modules = loaded_names(weight_module_names(cfg.model['model']) or set())
    try:
        regex = re.compile(str(cfg.tuner['target_regex']))
    except re.error:
        return []  # not a regex: PEFT's own error names it
    if layout is None:
        return []
    hit: dict[str, int] = {}
    for name in modules:
        component = layout.component(name)
        if component is not None and frozen[component] and regex.fullmatch(name):
            hit[component] = hit.get(component, 0) + 1
    return [f'notice: {cfg.source}: `tuner.target_regex` matches {count} module(s) of the {NAMES[component]}, which '
            f'`tuner.{FLAGS[component]}: true` keeps frozen: the adapter goes there anyway (a regex reaches PEFT as '
            'written; the freeze flags limit `all-linear` and `target_modules` lists). Narrow the regex, or set the '
            'flag false' for component, count in sorted(hit.items(), key=lambda item: COMPONENTS.index(item[0]))]


def loaded_names(stored: set[str]) -> set[str]:
    """The module names a checkpoint's stored weight names get once transformers has loaded it."""
    names = set()
    for name in stored:
        for pattern, replacement in LEGACY_RENAMES:
            name = pattern.sub(replacement, name)
        names.add(name)
    return names


def _frozen_entry_notices(cfg: ProjectConfig, layout: Layout, modules: set[str], entries: list[str],
                          frozen: dict[str, bool]) -> list[str]:
    """One notice per entry that names modules of a frozen component (the checkpoint's names, when it is local)."""
    notices = []
    for entry in entries:
        components = {layout.component(name) for name in modules if matches(entry, {name})} - {None}
        skipped = sorted((c for c in components if frozen[c]), key=COMPONENTS.index)
        if not skipped:
            continue
        kept = sorted((c for c in components if not frozen[c]), key=COMPONENTS.index)
        where = ' and '.join(NAMES[c] for c in skipped)
        flags = ', '.join(f'`tuner.{FLAGS[c]}: true`' for c in skipped)
        rest = (f'the adapter goes on those of the {" and ".join(NAMES[c] for c in kept)} only' if kept else
                'no adapter goes there')
        notices.append(f'notice: {cfg.source}: `tuner.target_modules`: {entry!r} names modules of the {where}, which '
                       f'{flags} keeps frozen: {rest}')
    return notices
