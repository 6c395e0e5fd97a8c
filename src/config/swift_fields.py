"""ms-swift's argument fields (name, type, default) per config section, read from a snapshot without importing ms-swift.

Validation runs before anything heavy is imported: importing ms-swift (torch, transformers) costs 6 to 18 s, too much
for a typo. ``swift_fields.json`` records, for the pinned ms-swift and transformers, every field of ``SftArguments``
and ``RLHFArguments`` with its type (``types.spec_of``) and default, the section it belongs to (the ms-swift class
that declares it), and the tuners ms-swift supports. ``tests/config/test_swift_fields.py`` regenerates it from the
installed ms-swift and fails when they differ, so an upgrade cannot leave the snapshot stale:

    .venv/bin/python -m src.config.swift_fields     # rewrite the snapshot after upgrading ms-swift
"""
from __future__ import annotations

import dataclasses
import enum
import json
from functools import cache
from pathlib import Path
from typing import Any

from .types import Spec, spec_of

SNAPSHOT = Path(__file__).with_name('swift_fields.json')
_MISSING = object()


@cache
def snapshot() -> dict[str, Any]:
    return json.loads(SNAPSHOT.read_text())


def fields(section: str) -> dict[str, Spec]:
    """Field name -> type spec of an ms-swift-backed section."""
    return {name: info['type'] for name, info in snapshot()['sections'][section].items()}


def default(section: str, name: str) -> Any:
    """ms-swift's own default of a field (``None`` where it has none or it is not plain data)."""
    return snapshot()['sections'][section][name].get('default')


def supported_tuners() -> list[str]:
    """The `tuner_type` values ms-swift accepts."""
    return snapshot()['tuners']


def template_of(model_type: str | None, template: str | None) -> str | None:
    """The ms-swift template a run uses: `template.template`, else the model type's default."""
    return template or snapshot()['model_templates'].get(model_type or '')


def norm_bbox(template: str | None) -> str | None:
    """How ms-swift's template writes boxes: `norm1000` (Qwen3-VL: 0-1000 of the image) or `none` (Qwen2.5-VL:
    pixels of the image the model receives); None for an unknown template."""
    return snapshot()['norm_bbox'].get(template or '')


def named_choices(section: str, name: str) -> list[str]:
    """The values a free-form field of ms-swift takes (model types, templates, LR schedulers), empty if unlisted."""
    return snapshot()['choices'].get(f'{section}.{name}', [])


def _plain(value: Any) -> Any:
    """A default as JSON data, or ``_MISSING`` when it is not plain data."""
    if isinstance(value, enum.Enum):
        value = value.value
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return _MISSING
    return value


def generate() -> dict[str, Any]:
    """The snapshot, read from the installed ms-swift (imports it)."""
    import swift
    import transformers
    from swift.arguments import RLHFArguments, SftArguments
    from swift.arguments.base_args.base_args import get_supported_tuners
    from swift.arguments.base_args.data_args import DataArguments
    from swift.arguments.base_args.model_args import ModelArguments
    from swift.arguments.base_args.quant_args import QuantizeArguments
    from swift.arguments.base_args.template_args import TemplateArguments
    from swift.arguments.tuner_args import TunerArguments

    def own(cls: type) -> set[str]:  # fields a class declares itself, so each lands in exactly one section
        return {name for name in vars(cls).get('__annotations__', {}) if not name.startswith('_')}

    sft = {f.name: f for f in dataclasses.fields(SftArguments) if f.init}
    owners = {
        'model': own(ModelArguments) | own(QuantizeArguments),
        'template': own(TemplateArguments),
        'tuner': own(TunerArguments) | {'tuner_backend', 'tuner_type', 'adapters'},
        'data': own(DataArguments),
    }
    by_section: dict[str, dict[str, dataclasses.Field]] = {}
    claimed: set[str] = set()
    for section, names in owners.items():
        by_section[section] = {n: sft[n] for n in sorted(names) if n in sft}
        claimed |= set(by_section[section])
    by_section['training'] = {n: f for n, f in sorted(sft.items()) if n not in claimed}
    by_section['rlhf'] = {f.name: f for f in sorted(dataclasses.fields(RLHFArguments), key=lambda f: f.name)
                          if f.init and f.name not in sft}
    sections: dict[str, dict[str, Any]] = {}
    for section, members in by_section.items():
        sections[section] = {}
        for name, f in members.items():
            entry: dict[str, Any] = {'type': spec_of(f.type)}
            value = f.default if f.default is not dataclasses.MISSING else (
                f.default_factory() if f.default_factory is not dataclasses.MISSING else _MISSING)
            if value is not _MISSING and (value := _plain(value)) is not _MISSING:
                entry['default'] = value
            sections[section][name] = entry
    from swift.model import MODEL_MAPPING
    from swift.template import TEMPLATE_MAPPING
    from transformers import IntervalStrategy, SchedulerType

    choices = {  # values of free-form `str` fields that ms-swift / transformers check only once a model is loading
        'model.model_type': sorted(MODEL_MAPPING),
        'template.template': sorted(TEMPLATE_MAPPING),
        'training.lr_scheduler_type': [s.value for s in SchedulerType],
        'training.eval_strategy': [s.value for s in IntervalStrategy],
    }
    templates = {  # model type -> its default template (ms-swift's model meta)
        name: meta.template or next((g.template for g in meta.model_groups if g.template), None)
        for name, meta in sorted(MODEL_MAPPING.items())}
    return {'ms_swift': swift.__version__, 'transformers': transformers.__version__,
            'tuners': sorted(get_supported_tuners()), 'choices': choices, 'sections': sections,
            'model_templates': templates,
            'norm_bbox': {name: meta.template_cls.norm_bbox for name, meta in sorted(TEMPLATE_MAPPING.items())}}


def write(path: Path = SNAPSHOT) -> Path:
    path.write_text(json.dumps(generate(), indent=1, sort_keys=True, ensure_ascii=False) + '\n')
    return path


if __name__ == '__main__':
    print(write())
