"""The import graph of ``src/``: no cycle, and no import from a lower layer back up.

Layers, lowest first: the leaves (``config``, which imports nothing else of ``src``; ``swift_seams``; ``testing``;
``lazy_exports``), then ``run`` (the run's folder, checkpoints, log, start weights, allocator), then ``datasets`` and
``rewards``, then ``trainers``, then ``eval``, then the entrypoint ``sft``. Every import counts: at module level, inside
functions, and under ``TYPE_CHECKING``.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / 'src'
LAYERS = [('config', 'swift_seams', 'testing', 'lazy_exports'), ('run', ), ('datasets', 'rewards'), ('trainers', ),
          ('eval', ), ('sft', )]
LEAVES_THAT_IMPORT_NOTHING = ('config', 'swift_seams', 'testing', 'lazy_exports')


def _modules() -> dict[str, Path]:
    modules = {}
    for path in SRC.rglob('*.py'):
        parts = list(path.relative_to(SRC.parent).with_suffix('').parts)
        if parts[-1] == '__init__':
            parts = parts[:-1]
        modules['.'.join(parts)] = path
    return modules


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``src`` modules ``name`` imports, anywhere in its source."""
    found = set()
    package = name.split('.') if path.name == '__init__.py' else name.split('.')[:-1]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                base = '.'.join(package[:len(package) - node.level + 1] + ([node.module] if node.module else []))
            for alias in node.names:
                target = f'{base}.{alias.name}'
                found.add(target if target in modules else base)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _room(module: str) -> str:
    parts = module.split('.')
    return parts[1] if len(parts) > 1 else parts[0]


def _layer(module: str) -> int:
    room = _room(module)
    return next(i for i, rooms in enumerate(LAYERS) if room in rooms)


def test_every_room_has_a_layer():
    rooms = {_room(m) for m in _graph()} - {'src'}
    assert rooms <= {room for layer in LAYERS for room in layer}, 'a new package needs its place in LAYERS'


def test_no_import_runs_back_up_a_layer():
    upward = sorted(f'{module} imports {target}' for module, targets in _graph().items() for target in targets
                    if module != 'src' and target != 'src' and _layer(target) > _layer(module))
    assert upward == []


def test_the_leaves_import_nothing_else_of_src():
    reaching = sorted(f'{module} imports {target}' for module, targets in _graph().items()
                      if _room(module) in LEAVES_THAT_IMPORT_NOTHING for target in targets
                      if _room(target) != _room(module))
    assert reaching == []


def test_no_import_cycle():
    graph = _graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    assert cycles == []
