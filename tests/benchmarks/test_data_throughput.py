"""A small smoke of benchmarks/data_throughput.py, so the benchmark keeps working (its timings are not checked)."""
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow  # trains or runs a command end to end


def test_data_throughput_runs_on_a_few_records(tmp_path, repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/data_throughput.py', '--records', '8', '--workers', '0',
                           '--dir', str(tmp_path)], cwd=repo_copy, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    header, row = done.stdout.splitlines()[1:3]
    assert header.split()[1:6] == ['ms-swift', 'before', '+allocator', 'project', 'project+aug']
    assert row.split()[0] == '0' and row.endswith('x')  # every variant measured, each in its own process
    assert 'project feed rate / GPU demand' in done.stdout
    assert len((tmp_path / 'project_8_1024x768_20-80.jsonl').read_text().splitlines()) == 8
