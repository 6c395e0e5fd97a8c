"""Memory of a dataset over a 1M-record JSONL: the project's offset index against holding the parsed records.

    python benchmarks/index_memory.py [--records 1000000] [--dir /tmp/index_memory]

The file holds dense records of about 300 bytes (an image path, the size, two objects). Each measurement runs in a
fresh process and reports its resident memory (RSS) after building, minus the RSS of the same process before:

- project: ``DenseCaptionDataset`` (a ``JsonlIndex``: byte offset, length and line number per record, numpy arrays),
  then 1,000 random records read and parsed through it, as a dataloader would;
- baseline: every record parsed into a Python list (what a dataset that loads the file up front holds).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = r'''
import json, sys, time
sys.path.insert(0, {repo!r})
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'):
            return int(line.split()[1]) / 1024
import numpy as np
from src.datasets.dense_caption import DenseCaptionDataset
before = rss()
start = time.perf_counter()
if {kind!r} == 'project':
    dataset = DenseCaptionDataset({path!r}, None)
    for i in np.random.default_rng(0).integers(0, len(dataset), 1000):
        dataset.record(int(i))
    n = len(dataset)
else:
    with open({path!r}) as f:
        records = [json.loads(line) for line in f if line.strip()]
    n = len(records)
print(n, rss() - before, time.perf_counter() - start)
'''


def make_file(root: Path, records: int) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    path = root / f'records_{records}.jsonl'
    if not path.is_file():
        with open(path, 'w') as f:
            for i in range(records):
                f.write(json.dumps({'images': [f'images/{i % 1000:04d}.jpg'], 'width': 1024, 'height': 768,
                                    'objects': [{'desc': 'car', 'bbox_2d': [i % 500, 10, i % 500 + 40, 90]},
                                                {'desc': 'lane', 'line': [0, 700, 512, 380, 1023, 700]}],
                                    'dataset': 'bench'}) + '\n')
    return path


def measure(kind: str, path: Path) -> tuple[int, float, float]:
    """(records, RSS growth in MiB, seconds) of building ``kind`` over ``path`` in a fresh process."""
    out = subprocess.run([sys.executable, '-c', PROBE.format(repo=str(REPO), kind=kind, path=str(path))],
                         check=True, capture_output=True, text=True).stdout.split()
    return int(out[0]), float(out[1]), float(out[2])


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', type=int, default=1_000_000)
    parser.add_argument('--dir', default='/tmp/index_memory')
    flags = parser.parse_args(argv)
    path = make_file(Path(flags.dir), flags.records)
    size = path.stat().st_size / 2**20
    results = {kind: measure(kind, path) for kind in ('project', 'baseline')}
    print(f'{flags.records} records, {size:.0f} MiB of JSONL')
    for kind, (n, mib, seconds) in results.items():
        label = 'project (offset index)' if kind == 'project' else 'baseline (parsed list)'
        print(f'{label:24} {n:>9} records  RSS +{mib:8.1f} MiB  ({mib * 2**20 / n:6.1f} B/record)  {seconds:6.2f} s')
    print(f'ratio baseline / project: {results["baseline"][1] / max(results["project"][1], 0.1):.0f}x less memory')
    return results


if __name__ == '__main__':
    main()
