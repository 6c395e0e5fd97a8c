"""Write a fusion config's mixture (its epoch 0) as one deterministic JSONL file.

    python scripts/fuse_datasets.py --config configs/dataset_mix/smoke.yaml --out output/smoke/mix.jsonl [--workers 2]

Same config and seed give a byte-identical file for any --workers. Train on it with `custom.train_jsonl: <out>`;
each line carries `_fusion_source`, so per-source telemetry and `custom.dataset_prompts` keyed by source still apply.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.config import ConfigError  # noqa: E402
from src.config.fusion import load_fusion_config  # noqa: E402
from src.datasets.contract import RecordError  # noqa: E402
from src.datasets.fusion.offline import write_mixture  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='fusion config (YAML or JSON), e.g. configs/dataset_mix/x.yaml')
    parser.add_argument('--out', required=True, help='the mixture JSONL to write')
    parser.add_argument('--workers', type=int, default=1, help='processes converting records (output is identical)')
    flags = parser.parse_args(argv)
    if flags.workers < 1:
        parser.error('--workers must be at least 1')
    try:
        fusion = load_fusion_config(flags.config, Path.cwd())
        counts = write_mixture(fusion, flags.out, flags.workers)
    except (ConfigError, RecordError) as exc:
        print(f'error: {exc}', file=sys.stderr)
        return 2
    except OSError as exc:  # a folder that cannot be written (read-only, a file where a folder should be)
        print(f'error: --out {flags.out}: cannot write the mixture ({exc.strerror or exc}: '
              f'{exc.filename or flags.out}); nothing was written', file=sys.stderr)
        return 2
    width = max(len(name) for name in counts)
    print(f'wrote {sum(counts.values())} records to {flags.out} (seed {fusion.seed}):')
    for name, count in counts.items():
        print(f'  {name:<{width}}  {count}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
