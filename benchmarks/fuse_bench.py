"""Offline mixture builder throughput and memory on a synthetic 1M-record mix, against `cat | shuf` in the same run.

    python benchmarks/fuse_bench.py [--records 1000000] [--workers 1 2] [--dir /tmp/fuse_bench]

Three sources (60% / 30% / 10% of the records, dense records of about 300 bytes with relative image paths) are
mixed with ratios 1.0 / 0.5 / 2.0. The baseline is `cat a b c | shuf > out`: a shuffle of the concatenated
files that neither samples by ratio, tags sources nor rewrites paths, the least work a mixture can cost.
Each measurement runs in its own process, so peak memory (max RSS) is that process's alone.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARES = {'domain_a': (0.6, 1.0), 'domain_b': (0.3, 0.5), 'refcoco': (0.1, 2.0)}  # name: (share of records, ratio)


def make_sources(root: Path, records: int) -> Path:
    """Write the three source files and the fusion config (once per size; reused by later runs)."""
    root.mkdir(parents=True, exist_ok=True)
    config = root / f'mix_{records}.json'
    if config.is_file():
        return config
    sources = []
    for name, (share, ratio) in SHARES.items():
        path = root / f'{name}_{records}.jsonl'
        with open(path, 'w') as f:
            for i in range(int(records * share)):
                objects = [{'desc': 'car', 'bbox_2d': [i % 500, 10, i % 500 + 40, 90]},
                           {'desc': 'lane', 'line': [0, 700, 512, 380, 1023, 700]}]
                f.write(json.dumps({'images': [f'images/{i % 1000:04d}.jpg'], 'width': 1024, 'height': 768,
                                    'objects': objects, 'dataset': name}) + '\n')
        sources.append({'name': name, 'train_jsonl': str(path), 'ratio': ratio})
    config.write_text(json.dumps({'seed': 0, 'sources': sources}))
    return config


def measure(command: list[str]) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB) of ``command``, run alone in a fresh child process."""
    probe = ('import resource, subprocess, sys, time; t = time.perf_counter(); subprocess.run(sys.argv[1:], '
             'check=True, stdout=subprocess.DEVNULL); print(time.perf_counter() - t, '
             'resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)')
    out = subprocess.run([sys.executable, '-c', probe, *command], check=True, capture_output=True, text=True).stdout
    seconds, rss_kib = out.split()
    return float(seconds), int(rss_kib) / 1024


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--records', type=int, default=1_000_000, help='source records in all (default 1M)')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 2], help='worker counts to measure')
    parser.add_argument('--dir', default='/tmp/fuse_bench', help='where the synthetic sources and outputs go')
    flags = parser.parse_args(argv)
    root = Path(flags.dir)
    config = make_sources(root, flags.records)
    sources = [s['train_jsonl'] for s in json.loads(config.read_text())['sources']]
    mixed = sum(int(flags.records * share * ratio) for share, ratio in SHARES.values())

    base_s, base_mib = measure(['bash', '-c', f'cat {" ".join(sources)} | shuf > {root / "shuf.jsonl"}'])
    print(f'machine: {os.cpu_count()} CPUs; {flags.records} source records -> {mixed} mixed records')
    print(f'{"":24}{"seconds":>9}{"records/s":>12}{"peak MiB":>10}{"vs cat|shuf":>13}')
    print(f'{"cat | shuf (baseline)":24}{base_s:9.2f}{flags.records / base_s:12,.0f}{base_mib:10.0f}{1.0:12.2f}x')
    for workers in flags.workers:
        out = root / f'mix_{workers}.jsonl'
        seconds, mib = measure([sys.executable, str(REPO / 'scripts' / 'fuse_datasets.py'), '--config', str(config),
                                '--out', str(out), '--workers', str(workers)])
        print(f'{f"fuse_datasets, {workers} worker(s)":24}{seconds:9.2f}{mixed / seconds:12,.0f}{mib:10.0f}'
              f'{seconds / base_s:12.2f}x')
    outputs = [(root / f'mix_{w}.jsonl').read_bytes() for w in flags.workers]
    print('outputs identical across worker counts:', all(o == outputs[0] for o in outputs))
    return 0


if __name__ == '__main__':
    sys.exit(main())
