"""Read a YAML file strictly: UTF-8 only, no duplicate keys, errors that name the file and the line.

PyYAML keeps the last of two equal keys in a mapping without a word, so a config with two `training:` blocks trains
with the second alone (a run once wrote into another recipe's output_dir that way). Here every duplicate is an error
naming both lines (YAML's merge key, ``<<: *anchor``, is not a duplicate: the keys written beside it override the
merged ones, as YAML defines). A file that is not UTF-8 is an error with the byte offset of the first bad byte. Only
PyYAML's safe constructors are used: a config can hold data, never objects or code.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

MERGE_TAG = 'tag:yaml.org,2002:merge'


class _StrictLoader(yaml.SafeLoader):
    """``SafeLoader`` that records duplicate mapping keys instead of dropping the first."""

    def __init__(self, stream: str, name: str):
        super().__init__(stream)
        self.name = name
        self.duplicates: list[tuple[int, str]] = []

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == MERGE_TAG:  # `<<: *anchor`: the keys written beside it override the merged ones
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:  # an unhashable key: SafeLoader reports it below
                continue
            if first is not None:
                message = (f'{self.name}:{line}: `{key}` is set twice in one mapping (first at line {first}); YAML '
                           'would keep only the second. Merge the two into one')
                self.duplicates.append((line, message))
            else:
                seen[key] = line
        return super().construct_mapping(node, deep=deep)


def read_text(path: Path) -> str:
    """The file as text, or ``ConfigError`` naming the first byte that is not UTF-8."""
    data = path.read_bytes()
    if data.startswith((b'\xff\xfe', b'\xfe\xff')):
        raise ConfigError([f'{path}: the file is UTF-16; save it as UTF-8'])
    try:
        return data.decode('utf-8-sig')
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b'\n') + 1
        raise ConfigError([f'{path}:{line}: not UTF-8 text (byte {exc.start}: 0x{data[exc.start]:02x}); save the file '
                           'as UTF-8']) from None


def read_yaml(path: str | Path) -> Any:
    """Parse ``path`` (UTF-8 YAML, safe constructors only); raises one ``ConfigError`` listing every duplicate key."""
    path = Path(path)
    loader = _StrictLoader(read_text(path), str(path))
    try:
        data = loader.get_single_data()
    except yaml.YAMLError as exc:
        raise ConfigError([f'{path}: invalid YAML: {exc}']) from None
    finally:
        loader.dispose()
    if loader.duplicates:
        raise ConfigError([message for _, message in sorted(loader.duplicates)])
    return data
