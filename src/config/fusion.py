"""The fusion config: which sources a training set mixes, how much of each per epoch, which ones are evaluated.

It is a YAML / JSON file (``custom.fusion_config: configs/dataset_mix/x.yaml``) or the same mapping inline::

    seed: 0                          # drives every epoch's draw, online and offline
    eval_sources: [roads]            # optional; default: every `domain: target` source with a `val_jsonl`
    sources:
      - name: roads                  # telemetry key: train/roads_loss, train/roads_token_acc
        train_jsonl: data/roads/train.jsonl
        val_jsonl: data/roads/val.jsonl
        ratio: 1.0                   # samples per epoch = ratio x records (0.25: a fresh quarter each epoch)
        domain: target               # target (the task) | source (auxiliary data; never evaluated by default)
      - name: refcoco
        train_jsonl: data/refcoco/train.jsonl
        count: 5000                  # or a fixed number of samples per epoch
        domain: source
        prompts: {dense: "Locate every object ..."}   # per-source prompt, over `custom.prompts`
        augmentation: null           # per-source override of `custom.augmentation` (null: none)
    dataset_domains: {refcoco: source}   # the playbook's spelling: the domain of sources by name (same as `domain`)

Relative paths are resolved against the file that names them. Every problem is collected and raised once.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .augmentation import AugmentationSpec, parse_augmentation
from .bounds import COUNT, NON_NEGATIVE, SEED, is_number
from .errors import ConfigError
from .loader import dotted
from .prompts import prompt_problems
from .yaml_file import read_text, read_yaml

DOMAINS = ('target', 'source')
SOURCE_KEYS = ('name', 'train_jsonl', 'val_jsonl', 'ratio', 'count', 'domain', 'prompts', 'augmentation')
TOP_KEYS = ('seed', 'eval_sources', 'sources', 'dataset_domains')
NAME = re.compile(r'^[A-Za-z0-9][A-Za-z0-9_.-]*$')
# Names whose telemetry keys would overwrite ms-swift's own metrics (`token_acc`, `aux_loss`).
RESERVED_NAMES = ('token', 'aux', 'sft', 'llm_kd', 'vision_kd')
"""Source names whose per-source metrics (`<name>_loss`, `<name>_token_acc`) would overwrite ms-swift's (`token_acc`,
`aux_loss`) or the GKD monitor's (`sft_loss`, `llm_kd_loss`, `vision_kd_loss`): a red-team run logged a negative
cross-entropy for a source named `llm_kd`."""
RATIO = NON_NEGATIVE
KEEP_AUGMENTATION = object()
"""A source without an `augmentation` key uses `custom.augmentation`."""


@dataclass
class FusionSource:
    """One dataset of the mixture."""

    name: str
    train_jsonl: Path
    val_jsonl: Path | None = None
    ratio: float | None = None
    """Samples per epoch as a multiple of the source's record count (1.0: each record once)."""
    count: int | None = None
    """Samples per epoch as a fixed number (instead of `ratio`)."""
    domain: str = 'target'
    prompts: dict[str, str] = field(default_factory=dict)
    augmentation: AugmentationSpec | None | object = KEEP_AUGMENTATION
    """The source's own augmentation (None: none), or ``KEEP_AUGMENTATION``: the run's ``custom.augmentation``."""

    @property
    def asked(self) -> bool:
        """Whether the config asks this source for samples (a ratio or count of 0 leaves it out on purpose)."""
        return bool(self.count) if self.count is not None else (1.0 if self.ratio is None else self.ratio) > 0

    def quota(self, records: int) -> int:
        """Samples this source contributes to every epoch, given how many records its file has."""
        if self.count is not None:
            return self.count
        return round((1.0 if self.ratio is None else self.ratio) * records)


@dataclass
class FusionConfig:
    """A validated fusion config."""

    sources: list[FusionSource]
    seed: int = 0
    eval_sources: list[str] = field(default_factory=list)
    origin: str = '<inline>'

    def to_dict(self) -> dict[str, Any]:
        """The config as an inline mapping with absolute paths (what `resolved_config.yaml` records)."""
        sources = []
        for s in self.sources:
            entry = {'name': s.name, 'train_jsonl': str(s.train_jsonl), 'domain': s.domain}
            if s.val_jsonl is not None:
                entry['val_jsonl'] = str(s.val_jsonl)
            entry.update({k: v for k, v in (('ratio', s.ratio), ('count', s.count)) if v is not None})
            if s.prompts:
                entry['prompts'] = s.prompts
            if s.augmentation is not KEEP_AUGMENTATION:
                entry['augmentation'] = s.augmentation.to_dict() if s.augmentation else None
            sources.append(entry)
        return {'seed': self.seed, 'eval_sources': self.eval_sources, 'sources': sources}

    def missing_files(self) -> list[str]:
        """Problems for source files that do not exist (checked before training, not at validation)."""
        return [
            f'{self.origin}: source `{s.name}`: `{key}` file {path} does not exist' for s in self.sources
            for key, path in (('train_jsonl', s.train_jsonl), ('val_jsonl', s.val_jsonl))
            if path is not None and not path.is_file()
        ]

    def check_files(self) -> None:
        if problems := self.missing_files():
            raise ConfigError(problems)


def load_fusion_config(value: str | Path | dict, base_dir: Path) -> FusionConfig:
    """Read ``value`` (a file path, or an inline mapping whose paths are relative to ``base_dir``) and validate it."""
    if isinstance(value, dict):
        return parse_fusion_config(value, base_dir, '<inline custom.fusion_config>')
    path = Path(value) if Path(value).is_absolute() else base_dir / value
    if not path.is_file():
        raise ConfigError([f'fusion config {path} does not exist'])
    try:
        raw = json.loads(read_text(path)) if path.suffix == '.json' else read_yaml(path)
    except json.JSONDecodeError as exc:
        raise ConfigError([f'{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}']) from None
    return parse_fusion_config(raw, path.parent, str(path))


def parse_fusion_config(raw: Any, base_dir: Path, origin: str) -> FusionConfig:
    """Check a fusion mapping key by key; raise one ``ConfigError`` listing every problem."""
    if not isinstance(raw, dict):
        raise ConfigError([f'{origin}: must be a mapping with `sources` (and optionally `seed`, `eval_sources`)'])
    errors = [f'{origin}: unknown key `{k}`; valid: {", ".join(TOP_KEYS)}' for k in raw if k not in TOP_KEYS]
    seed = raw.get('seed', 0)
    if (problem := SEED.problem(seed)) is not None:
        errors.append(f'{origin}: `seed`: {problem}')
    entries = raw.get('sources')
    if not isinstance(entries, list) or not entries:
        errors.append(f'{origin}: `sources` must be a non-empty list of sources')
        entries = []
    sources = []
    seen: set[str] = set()
    for i, entry in enumerate(entries):
        source = _parse_source(entry, base_dir, f'{origin}: sources[{i}]', errors)
        if source is None:
            continue
        if source.name in seen:
            errors.append(f'{origin}: sources[{i}]: duplicate source name `{source.name}`; names must be unique')
        seen.add(source.name)
        sources.append(source)
    _apply_dataset_domains(raw.get('dataset_domains'), sources, entries, origin, errors)
    eval_sources = raw.get('eval_sources')
    if eval_sources is None:
        eval_sources = [s.name for s in sources if s.domain == 'target' and s.val_jsonl is not None]
    elif not isinstance(eval_sources, list) or not all(isinstance(n, str) for n in eval_sources):
        errors.append(f'{origin}: `eval_sources` must be a list of source names')
        eval_sources = []
    by_name = {s.name: s for s in sources}
    for name in eval_sources:
        if name not in by_name:
            errors.append(f'{origin}: `eval_sources`: unknown source `{name}`; sources: {", ".join(by_name)}')
        elif by_name[name].val_jsonl is None:
            errors.append(f'{origin}: `eval_sources`: source `{name}` has no `val_jsonl` to evaluate on')
    if sources and not any(s.count > 0 if s.count is not None else s.ratio is None or s.ratio > 0 for s in sources):
        errors.append(f'{origin}: every source has ratio / count 0; the mixture would be empty')
    if errors:
        raise ConfigError(errors)
    return FusionConfig(sources, seed, list(eval_sources), origin)


def _apply_dataset_domains(domains: Any, sources: list[FusionSource], entries: list[Any], origin: str,
                           errors: list[str]) -> None:
    """`dataset_domains: {name: target | source}`: the playbook's way to mark sources, the same as their `domain`."""
    if domains is None:
        return
    if not isinstance(domains, dict):
        errors.append(f'{origin}: `dataset_domains` must map source names to {" or ".join(DOMAINS)}, got {domains!r}')
        return
    by_name = {s.name: s for s in sources}
    explicit = {e.get('name') for e in entries if isinstance(e, dict) and 'domain' in e}
    for name, domain in domains.items():
        where = f'{origin}: `dataset_domains.{name}`'
        if name not in by_name:
            errors.append(f'{where}: unknown source; sources: {", ".join(by_name)}')
        elif domain not in DOMAINS:
            errors.append(f'{where}: must be one of {", ".join(DOMAINS)}, got {domain!r}')
        elif name in explicit and by_name[name].domain != domain:
            errors.append(f'{where}: {domain} disagrees with the source\'s own `domain: {by_name[name].domain}`; '
                          'keep one of the two')
        else:
            by_name[name].domain = domain


def _parse_source(entry: Any, base_dir: Path, where: str, errors: list[str]) -> FusionSource | None:
    if not isinstance(entry, dict):
        errors.append(f'{where}: must be a mapping with `name` and `train_jsonl`')
        return None
    name = entry.get('name')
    if not isinstance(name, str) or not NAME.match(name):
        errors.append(f'{where}: `name` must be letters, digits, `_`, `.` or `-` (it becomes a metric name), '
                      f'got {name!r}')
        name = str(name)
    elif name in RESERVED_NAMES:
        errors.append(f'{where}: name `{name}` is reserved (its metrics would overwrite ms-swift\'s or the GKD '
                      f'monitor\'s `{name}_*`); name the source otherwise')
    where = f'{where} (`{name}`)'
    errors.extend(f'{where}: unknown key `{k}`; valid: {", ".join(SOURCE_KEYS)}' for k in entry if k not in SOURCE_KEYS)
    paths = {}
    for key in ('train_jsonl', 'val_jsonl'):
        value = entry.get(key)
        if value is None:
            if key == 'train_jsonl':
                errors.append(f'{where}: `train_jsonl` is required')
            paths[key] = None
        elif not isinstance(value, str):
            errors.append(f'{where}: `{key}` must be a path, got {value!r}')
            paths[key] = None
        else:
            paths[key] = (base_dir / Path(value).expanduser()).resolve()
    ratio, count = entry.get('ratio'), entry.get('count')
    if ratio is not None and count is not None:
        errors.append(f'{where}: set either `ratio` or `count`, not both')
    if ratio is not None and (problem := RATIO.problem(ratio)) is not None:
        errors.append(f'{where}: `ratio` (samples per epoch / records): {problem}')
    if count is not None and (problem := COUNT.problem(count)) is not None:
        errors.append(f'{where}: `count` (samples per epoch): {problem}')
    domain = entry.get('domain', 'target')
    if domain not in DOMAINS:
        errors.append(f'{where}: `domain` must be one of {", ".join(DOMAINS)}, got {domain!r}')
    prompts = entry.get('prompts') or {}
    errors.extend(f'{where}: `{dotted(("prompts", *path))}`: {p}' for path, p in prompt_problems(prompts))
    augmentation = entry.get('augmentation', KEEP_AUGMENTATION)
    if augmentation is not KEEP_AUGMENTATION:
        augmentation, problems = parse_augmentation(augmentation)
        errors.extend(f'{where}: `{dotted(("augmentation", *path))}`: {p}' for path, p in problems)
    return FusionSource(name, paths['train_jsonl'], paths['val_jsonl'],
                        float(ratio) if is_number(ratio) else None,
                        int(count) if COUNT.admits(count) else None, domain,
                        prompts if isinstance(prompts, dict) else {}, augmentation)
