"""A one-step smoke of benchmarks/kd_overhead.py, so the benchmark keeps working (its timings are not checked)."""
import subprocess
import sys

from tests.conftest import REPO


def test_kd_overhead_runs_one_step(tmp_path):
    done = subprocess.run([sys.executable, 'benchmarks/kd_overhead.py', '--steps', '1', '--dir', str(tmp_path)],
                          cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert 'ratio GKD / SFT' in done.stdout and 'ratio without JSD' in done.stdout and 'top-64 GKD' in done.stdout
