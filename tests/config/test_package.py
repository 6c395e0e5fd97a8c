"""`src/config` stands alone: it imports nothing from the rest of the project (no cycles through trainers or data)."""
import ast
from pathlib import Path

from tests.conftest import REPO


def test_the_config_package_imports_only_itself_and_libraries():
    for path in sorted((REPO / 'src' / 'config').glob('*.py')):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                assert node.level <= 1, f'{path.name}:{node.lineno}: imports from outside src/config'
                assert not (node.module or '').startswith('src'), f'{path.name}:{node.lineno}: imports {node.module}'
            elif isinstance(node, ast.Import):
                assert not any(a.name.startswith('src') for a in node.names), f'{path.name}:{node.lineno}'


def test_errors_live_in_one_module():
    raising = {p.name for p in Path(REPO / 'src' / 'config').glob('*.py') if 'class ConfigError' in p.read_text()}
    assert raising == {'errors.py'}
