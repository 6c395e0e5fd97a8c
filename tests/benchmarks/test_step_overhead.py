"""A one-step smoke of benchmarks/step_overhead.py, so the benchmark keeps working (its timings are not checked)."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def test_step_overhead_runs_one_step_per_run(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/step_overhead.py', '--steps', '1', '--rounds', '1',
                           '--dir', str(tmp_path)], cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'ratio project / ms-swift' in done.stdout
