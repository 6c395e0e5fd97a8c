"""A one-iteration smoke of benchmarks/fuse_bench.py, so the benchmark keeps working (its timings are not checked)."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def test_fuse_bench_runs_on_a_small_mix(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/fuse_bench.py', '--records', '300', '--workers', '1', '2',
                           '--dir', str(tmp_path)], cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'vs cat|shuf' in done.stdout and 'outputs identical across worker counts: True' in done.stdout
