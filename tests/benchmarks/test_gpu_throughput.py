"""benchmarks/gpu_throughput.py: a clear exit without CUDA, and a one-step CPU smoke of its training path."""
import subprocess
import sys

import pytest
import torch

from tests.conftest import REPO

pytestmark = pytest.mark.slow  # trains or runs a command end to end


@pytest.mark.skipif(torch.cuda.is_available(), reason='the no-GPU message is for machines without CUDA')
def test_without_cuda_it_says_so_and_exits_2(repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/gpu_throughput.py'], cwd=repo_copy, capture_output=True,
                          text=True)
    assert done.returncode == 2
    assert 'measures a CUDA GPU and none is visible' in done.stderr and '--cpu-smoke' in done.stderr


def test_cpu_smoke_trains_one_step_of_each_mode(repo_copy):
    done = subprocess.run([sys.executable, 'benchmarks/gpu_throughput.py', '--cpu-smoke'], cwd=repo_copy,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = [line.split() for line in done.stdout.splitlines() if line.startswith('tiny')]
    assert [(r[1], r[2]) for r in rows] == [('lora', 'off'), ('lora', 'on'), ('full', 'off'), ('full', 'on')]


def test_the_architectures_have_the_published_sizes():
    sys.path.insert(0, str(REPO / 'benchmarks'))
    import gpu_throughput
    from transformers import Qwen3VLForConditionalGeneration

    sizes = {}
    for arch in ('2b', '4b', '8b'):
        with torch.device('meta'):
            model = Qwen3VLForConditionalGeneration._from_config(gpu_throughput.build_config(arch))
        sizes[arch] = round(sum(p.numel() for p in model.parameters()) / 1e9, 2)
    assert sizes == {'2b': 2.13, '4b': 4.44, '8b': 8.77}
