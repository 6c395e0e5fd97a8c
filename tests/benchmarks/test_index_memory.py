"""A small smoke of benchmarks/index_memory.py, so the benchmark keeps working (its figures are not checked)."""
import subprocess
import sys

from tests.conftest import REPO


def test_index_memory_runs_on_a_small_file(tmp_path):
    done = subprocess.run([sys.executable, 'benchmarks/index_memory.py', '--records', '2000', '--dir', str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'project (offset index)' in done.stdout and '2000 records' in done.stdout
