"""Write the tiny random Qwen3-VL checkpoint (a few MB, real Qwen special tokens and chat template) to a directory.

    python scripts/make_tiny_model.py .cache/tiny-qwen3-vl

The smoke configs do this themselves on first use (`custom.build_tiny_model: true`).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.tiny_model import build_tiny_qwen3_vl  # noqa: E402

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='directory to write (created if missing)')
    parser.add_argument('--seed', type=int, default=0, help='weight initialisation seed')
    args = parser.parse_args()
    print(build_tiny_qwen3_vl(args.out_dir, seed=args.seed))
