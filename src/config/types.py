"""Field types as plain data, so a config is type-checked without importing ms-swift (and torch) first.

A type is a JSON-able spec built from a Python annotation: ``'any'``, ``{'type': 'int'}`` (also ``float``, ``str``,
``bool``, ``dict``, ``none``), ``{'literal': [...]}``, ``{'union': [...]}``, ``{'list': spec}`` and
``{'enum': [...]}`` for an ``enum.Enum`` (checked by value). ms-swift's field types are stored this way in
``swift_fields.json``; the project's own annotations are converted on the fly.
"""
from __future__ import annotations

import enum
import types
import typing
from typing import Any

Spec = Any  # 'any' | dict (see the module docstring)
_SCALARS = {bool: 'bool', int: 'int', float: 'float', str: 'str', dict: 'dict', type(None): 'none'}


def spec_of(annotation: Any) -> Spec:
    """The spec of a Python annotation; classes a YAML value can never be (GenerationConfig, ...) become ``any``."""
    if annotation is Any:
        return 'any'
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin is typing.Literal:
        return {'literal': [a.value if isinstance(a, enum.Enum) else a for a in args]}
    if origin in (typing.Union, types.UnionType):
        return {'union': [spec_of(a) for a in args]}
    if origin in (list, tuple, set):
        return {'list': spec_of(args[0]) if args else 'any'}
    if origin is dict:
        return {'type': 'dict'}
    if annotation in _SCALARS:
        return {'type': _SCALARS[annotation]}
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return {'enum': [m.value for m in annotation]}
    return 'any'


def fits(value: Any, spec: Spec) -> bool:
    """Whether a YAML value fits ``spec`` (an int passes as a float; a bool is never a number)."""
    if spec == 'any':
        return True
    if 'union' in spec:
        return any(fits(value, s) for s in spec['union'])
    if 'literal' in spec:
        return any(value == v and type(value) is type(v) for v in spec['literal'])
    if 'enum' in spec:
        return value in spec['enum']
    if 'list' in spec:
        return isinstance(value, (list, tuple)) and all(fits(v, spec['list']) for v in value)
    kind = spec['type']
    if kind in ('int', 'float') and isinstance(value, bool):
        return False
    return isinstance(value, {'bool': bool, 'int': int, 'float': (int, float), 'str': str, 'dict': dict,
                              'none': type(None)}[kind])


def choices(spec: Spec) -> list[Any]:
    """The enumerated values a field takes (its literals and enum values), empty for a free-form field."""
    if spec == 'any':
        return []
    if 'union' in spec:
        return [c for s in spec['union'] for c in choices(s)]
    return [v for v in spec.get('literal', spec.get('enum', [])) if v is not None]


def describe(spec: Spec) -> str:
    """How an error message names the expected type: ``Optional[float]``, ``List[str]``, ``one of 'a', 'b'``."""
    if spec == 'any':
        return 'any value'
    if 'union' in spec:
        parts = [s for s in spec['union'] if s != {'type': 'none'}]
        if parts == [s for s in spec['union']]:
            return ' or '.join(describe(s) for s in parts)
        inner = ' or '.join(describe(s) for s in parts) if len(parts) > 1 else describe(parts[0])
        return f'Optional[{inner}]'
    if 'literal' in spec or 'enum' in spec:
        return 'one of ' + ', '.join(repr(v) for v in spec.get('literal', spec.get('enum')))
    if 'list' in spec:
        return f'List[{describe(spec["list"])}]'
    return spec['type'] if spec['type'] != 'none' else 'null'
