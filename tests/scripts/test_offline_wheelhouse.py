"""The offline wheelhouse plan: what an offline GPU node lacks, at the locked versions, and nothing it has."""
from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO

SCRIPT = REPO / 'scripts' / 'offline_wheelhouse.py'


def _plan(*args: str) -> dict[str, str]:
    done = subprocess.run([sys.executable, str(SCRIPT), '--dry-run', *args], capture_output=True, text=True,
                          check=True)
    return dict(line.strip().split('==') for line in done.stdout.splitlines() if line.startswith('  '))


def test_the_plan_for_the_gpu_node_holds_the_toolkits_missing_packages_only():
    plan = _plan('--python', '3.12', '--have-preset', 'gpu-node', '--skip', 'av,decord')
    wanted = {'ms-swift': '4.6.0', 'trl': '0.29.1', 'datasets': '4.8.4', 'qwen-vl-utils': '0.0.14'}
    assert wanted.items() <= plan.items()
    assert not {'torch', 'transformers', 'peft', 'accelerate', 'numpy', 'av', 'decord'} & plan.keys()


def test_have_stops_the_walk_at_the_named_packages():
    everything = _plan('--have', 'torch')
    fewer = _plan('--have', 'torch,transformers,peft,accelerate,datasets')
    assert 'transformers' in everything and 'transformers' not in fewer and 'datasets' not in fewer
    assert 'ms-swift' in fewer and len(fewer) < len(everything)
