"""benchmarks/engines.py runs each engine through the entrypoint with two processes and reports what one rank holds."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_engines_benchmark_reports_each_rank_against_ddp(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/engines.py', '--arch', 'tiny', '--steps', '1', '--engines',
                           'ddp', 'zero3', '--dir', str(tmp_path)], cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line.startswith(('ddp', 'zero3'))}
    ddp_params, zero3_params = (int(rows[e][4].replace(',', '')) for e in ('ddp', 'zero3'))
    assert zero3_params == pytest.approx(ddp_params / 2, rel=0.05), 'ZeRO-3 holds half of the weights per rank'
    assert rows['ddp'][-2:] == ['1.00x,', '1.00x']
