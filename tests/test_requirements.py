"""The install pins only registry releases: a wheel path or URL in the lock installs only where it was written."""
import re
import tomllib

from tests.conftest import REPO

PIN = re.compile(r'^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)(\[[A-Za-z0-9,._-]+\])?==(?P<version>[A-Za-z0-9.!+-]+)$')


def _canonical(name: str) -> str:
    return re.sub(r'[-_.]+', '-', name).lower()


def _lock() -> dict[str, str]:
    pins = {}
    for number, line in enumerate((REPO / 'requirements' / 'lock.txt').read_text().splitlines(), 1):
        if not line.strip() or line.startswith('#'):
            continue
        match = PIN.match(line)
        assert match, f'requirements/lock.txt:{number}: {line!r} is not name==version from the registry'
        pins[_canonical(match['name'])] = match['version']
    return pins


def _pyproject_requirements() -> list[str]:
    project = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']
    return project['dependencies'] + [r for group in project['optional-dependencies'].values() for r in group]


def test_every_lock_line_is_a_registry_pin():
    assert len(_lock()) > 100


def test_every_pyproject_requirement_is_a_registry_pin():
    for requirement in _pyproject_requirements():
        assert PIN.match(requirement), f'pyproject.toml: {requirement!r} is not name==version from the registry'


def test_the_lock_agrees_with_pyproject():
    """The install reads both (pyproject for what, the lock as constraints): they must not contradict."""
    lock = _lock()
    project = tomllib.loads((REPO / 'pyproject.toml').read_text())['project']
    for requirement in project['dependencies'] + project['optional-dependencies']['test']:
        match = PIN.match(requirement)
        name = _canonical(match['name'])
        assert lock.get(name) == match['version'], f'{requirement} vs the lock: {name}=={lock.get(name)}'
