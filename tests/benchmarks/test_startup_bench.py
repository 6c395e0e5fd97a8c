"""benchmarks/startup.py measures the record check against the check as it was, and the cached rerun."""
import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_startup_benchmark_reports_records_per_second_and_the_cached_rerun(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/startup.py', '--records', '300', '--baseline-sample', '40',
                           '--no-sft', '--dir', str(tmp_path)], cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])['300']
    assert row['records'] == 300 and row['old_rec_s'] > 0 and row['new_rec_s'] > 0
    assert row['cached_s'] < row['new_s'], 'the rerun reads the cached verdict'
    assert '300 records: check before' in done.stdout and 'x per record' in done.stdout
