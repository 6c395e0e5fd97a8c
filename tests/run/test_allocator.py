"""The allocator setting the entrypoints apply: glibc thresholds raised, unless the environment chose them."""
import platform
import subprocess
import sys

import pytest

from src.run.allocator import tune_allocator
from tests.conftest import REPO


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_glibc_keeps_freed_blocks_for_reuse():
    assert tune_allocator().startswith('allocator: blocks up to 512 MiB reused from the heap')


def test_the_environment_wins(monkeypatch):
    monkeypatch.setenv('MALLOC_TRIM_THRESHOLD_', '0')
    assert tune_allocator() == 'allocator: left as the environment sets it (MALLOC_TRIM_THRESHOLD_)'


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(platform, 'libc_ver', lambda: ('musl', '1.2'))
    assert tune_allocator() == 'allocator: left as it is (not glibc)'


FREE_A_COPY = '''
import sys
import numpy as np
from src.run.allocator import tune_allocator, return_freed_memory

def resident():
    return int(open('/proc/self/statm').read().split()[1]) * 4096 >> 20

print(tune_allocator(*sys.argv[1:]))
copy = [np.ones(1 << 20, dtype=np.float32) for _ in range(50)]
kept = np.ones(1 << 20, dtype=np.float32)
del copy
held = resident()
return_freed_memory()
print(held, resident())
'''
"""In a fresh process: 200 MiB of 4 MiB blocks (a copy of some weights) freed below one block still in use."""


def _free_a_copy(*sharded_on_cpus: str) -> tuple[str, int, int]:
    done = subprocess.run([sys.executable, '-c', FREE_A_COPY, *sharded_on_cpus], cwd=REPO, capture_output=True,
                          text=True, check=True)
    line, sizes = done.stdout.splitlines()
    held, after = map(int, sizes.split())
    return line, held, after


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_a_freed_copy_of_the_weights_is_handed_back():
    """Blocks freed below a live one stay resident while freed blocks are kept, until ``return_freed_memory``."""
    line, held, after = _free_a_copy()
    assert line.startswith('allocator: blocks up to 512 MiB reused from the heap')
    assert held - after >= 150, (held, after)


@pytest.mark.skipif(platform.libc_ver()[0] != 'glibc', reason='glibc only')
def test_weights_sharded_over_cpu_processes_hand_freed_blocks_back_at_once():
    line, held, after = _free_a_copy('`training.fsdp`')
    assert line == ('allocator: blocks above 128 KiB handed back when freed (`training.fsdp` shards the weights over '
                    'CPU processes, which held 3-4x the memory with freed blocks kept; set MALLOC_MMAP_THRESHOLD_ / '
                    'MALLOC_TRIM_THRESHOLD_ to choose otherwise)')
    kept = _free_a_copy()[1]
    assert held < kept - 150, f'the copy was handed back when freed: {held} MiB resident against {kept} MiB'
