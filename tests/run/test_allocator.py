"""The allocator setting the entrypoints apply: glibc thresholds raised, unless the environment chose them."""
import platform

import pytest

from src.run.allocator import keep_freed_memory


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_glibc_keeps_freed_blocks_for_reuse():
    assert keep_freed_memory().startswith('allocator: blocks up to 512 MiB reused from the heap')


def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv('MALLOC_TRIM_THRESHOLD_', '0')
    assert keep_freed_memory() == 'allocator: left as the environment sets it (MALLOC_TRIM_THRESHOLD_)'


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, 'libc_ver', lambda: ('musl', '1.2'))
    assert keep_freed_memory() == 'allocator: left as it is (not glibc)'
