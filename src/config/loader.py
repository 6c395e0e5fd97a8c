"""Layered YAML loading: ``extends`` parents, deep merge, and where every value came from.

A config names its parent(s) with ``extends: parent.yaml`` or ``extends: [a.yaml, b.yaml]``; paths are relative to
the file that names them. Mappings merge key by key, lists and scalars replace. A mapping written with
``_replace_: true`` replaces the parent's mapping instead of merging into it (``_replace_`` takes true or false,
nothing else). Two parents of the same file that set one key to different values are an error: which one wins would
depend on list order, which is easy to get wrong.

A key whose value is empty (``training:`` with every line under it commented out reads as null, or ``{}``) where a
parent sets a mapping is an error: it would wipe the parent's settings without a word, or keep them while looking
cleared. Delete the key to inherit the parent's mapping; write ``{_replace_: true}`` to clear it. A null leaf
(``learning_rate: null``) is a value: ms-swift's default.

Each leaf remembers the file that set it (``origins``), so validation errors and relative paths can name it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .yaml_file import read_yaml

EXTENDS_KEY = 'extends'
REPLACE_MARKER = '_replace_'

KeyPath = tuple[str, ...]


@dataclass
class LoadedConfig:
    """The merged mapping of a config and its parents."""

    data: dict[str, Any]
    origins: dict[KeyPath, Path] = field(default_factory=dict)
    """For every leaf key path, the YAML file whose value won."""
    files: list[Path] = field(default_factory=list)
    """Every file read, parents first."""

    def origin(self, path: KeyPath) -> Path:
        """The file that set ``path``: the leaf itself, the leaf (a list, an inline value) that ``path`` lies inside,
        or, for a mapping, the file that set its first leaf."""
        for n in range(len(path), 0, -1):
            if path[:n] in self.origins:
                return self.origins[path[:n]]
        for key, file in self.origins.items():
            if key[:len(path)] == path:
                return file
        return self.files[-1]


def dotted(path: KeyPath) -> str:
    """A key path as an error message writes it: ``custom.augmentation.ops[0].prob``."""
    return ''.join(part if part.startswith('[') else f'.{part}' for part in path).lstrip('.')


def load_config(path: str | Path, base_config: str | Path | None = None) -> LoadedConfig:
    """Load ``path`` with its parents; ``base_config`` acts as one more parent, before those it names."""
    path = Path(path).resolve()
    extra = [Path(base_config).resolve()] if base_config else []
    return _load(path, chain=(), extra_parents=extra)


def _read_yaml(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    if not path.is_file():
        via = ' -> '.join(str(p) for p in chain) or '(command line)'
        raise ConfigError([f'{path}: config file not found (named by {via})'])
    data = read_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f'{path}: the top level must be a mapping of sections, got {type(data).__name__}'])
    return data


def _load(path: Path, chain: tuple[Path, ...], extra_parents: list[Path]) -> LoadedConfig:
    if path in chain:
        cycle = ' -> '.join(str(p) for p in (*chain, path))
        raise ConfigError([f'{path}: `extends` forms a cycle: {cycle}'])
    data = _read_yaml(path, chain)
    parents = data.pop(EXTENDS_KEY, None) or []
    if isinstance(parents, str):
        parents = [parents]
    if not isinstance(parents, list) or not all(isinstance(p, str) for p in parents):
        raise ConfigError([f'{path}: `extends` must be a path or a list of paths, got {parents!r}'])
    parent_paths = extra_parents + [(path.parent / p).resolve() for p in parents]

    merged = LoadedConfig(data={})
    for parent in parent_paths:
        loaded = _load(parent, chain + (path, ), extra_parents=[])
        _merge_sibling(merged, loaded, path)
    own_origins: dict[KeyPath, Path] = {}
    _collect_origins(data, (), path, own_origins)
    errors = _check_markers(data, (), path) + _check_empty_over_mapping(merged, data, (), path)
    if errors:
        raise ConfigError(errors)
    merged.data = _deep_merge(merged.data, data, (), merged.origins, own_origins)
    merged.files.append(path)
    return merged


def _check_markers(data: Any, prefix: KeyPath, file: Path) -> list[str]:
    """`_replace_` takes a boolean; a string such as "true" would be dropped and the mapping merged instead."""
    if not isinstance(data, dict):
        return []
    errors = []
    if REPLACE_MARKER in data and not isinstance(data[REPLACE_MARKER], bool):
        errors.append(f'{file}: `{dotted(prefix + (REPLACE_MARKER, ))}` must be true or false, got '
                      f'{data[REPLACE_MARKER]!r}')
    for key, value in data.items():
        errors += _check_markers(value, prefix + (str(key), ), file)
    return errors


def _check_empty_over_mapping(parents: LoadedConfig, data: Any, prefix: KeyPath, file: Path) -> list[str]:
    """An empty value (null, `{}`) where the parents set a non-empty mapping: say what to write instead."""
    if not isinstance(data, dict):
        return []
    errors = []
    for key, value in data.items():
        path = prefix + (str(key), )
        try:
            inherited = _get(parents.data, path)
        except (KeyError, TypeError):
            inherited = None
        if (value is None or value == {}) and isinstance(inherited, dict) and inherited:
            what = 'null (a key with nothing under it, e.g. every line commented out)' if value is None else '{}'
            errors.append(f'{file}: `{dotted(path)}` is {what}, but {parents.origin(path)} sets it to a mapping; '
                          f'delete the `{key}:` line to inherit that mapping, or write `{key}: {{_replace_: true}}` '
                          'to clear it')
        elif isinstance(value, dict):
            errors += _check_empty_over_mapping(parents, value, path, file)
    return errors


def _merge_sibling(acc: LoadedConfig, new: LoadedConfig, child: Path) -> None:
    """Merge one parent into the parents merged so far, rejecting keys two parents set differently."""
    errors = []
    for key, file in new.origins.items():
        if key in acc.origins and acc.origins[key] != file:
            mine, theirs = _get(acc.data, key), _get(new.data, key)
            if mine != theirs:
                errors.append(f'{child}: parents disagree on `{".".join(key)}`: {acc.origins[key]} sets {mine!r}, '
                              f'{file} sets {theirs!r}; set it in {child.name} to say which wins')
    if errors:
        raise ConfigError(errors)
    acc.data = _deep_merge(acc.data, new.data, (), acc.origins, new.origins)
    acc.files.extend(f for f in new.files if f not in acc.files)


def _get(data: dict[str, Any], key: KeyPath) -> Any:
    for part in key:
        data = data[part]
    return data


def _collect_origins(data: Any, prefix: KeyPath, file: Path, out: dict[KeyPath, Path]) -> None:
    if isinstance(data, dict) and data:
        for key, value in data.items():
            if key != REPLACE_MARKER:
                _collect_origins(value, prefix + (str(key), ), file, out)
    else:
        out[prefix] = file


def _deep_merge(base: dict[str, Any], override: dict[str, Any], prefix: KeyPath, origins: dict[KeyPath, Path],
                new_origins: dict[KeyPath, Path]) -> dict[str, Any]:
    """Merge ``override`` into a copy of ``base``; ``origins`` is updated in place for the keys replaced."""
    result = dict(base)
    for key, value in override.items():
        path = prefix + (str(key), )
        replace = isinstance(value, dict) and value.get(REPLACE_MARKER) is True
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if k != REPLACE_MARKER}
        if isinstance(value, dict) and isinstance(result.get(key), dict) and not replace:
            result[key] = _deep_merge(result[key], value, path, origins, new_origins)
            continue
        for old in [k for k in origins if k[:len(path)] == path]:
            del origins[old]
        origins.update({k: v for k, v in new_origins.items() if k[:len(path)] == path})
        result[key] = value
    return result
