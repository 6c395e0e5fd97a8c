"""A small smoke of benchmarks/index_memory.py, so the benchmark keeps working (its figures are not checked)."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def test_index_memory_runs_on_a_small_file(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/index_memory.py', '--records', '2000', '--dir', str(tmp_path)],
                          cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'project (offset index)' in done.stdout and '2000 records' in done.stdout
