"""A one-step smoke of benchmarks/step_overhead.py, so the benchmark keeps working (its timings are not checked)."""
import subprocess
import sys

from tests.conftest import REPO


def test_step_overhead_runs_one_step_per_run(tmp_path):
    done = subprocess.run([sys.executable, 'benchmarks/step_overhead.py', '--steps', '1', '--rounds', '1',
                           '--dir', str(tmp_path)], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'ratio project / ms-swift' in done.stdout
