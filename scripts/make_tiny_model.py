"""Write a tiny random Qwen3-VL (or Qwen2.5-VL) checkpoint with the real Qwen special tokens and chat template.

    python scripts/make_tiny_model.py .cache/tiny-qwen3-vl
    python scripts/make_tiny_model.py .cache/tiny-qwen2.5-vl --arch qwen2_5_vl

The smoke configs do this themselves on first use (`custom.build_tiny_model: true`).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from src.testing.tiny_model import TINY_ARCHS, build_tiny_model  # noqa: E402

if __name__ == '__main__':
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('out_dir', help='directory to write (created if missing)')
    parser.add_argument('--arch', choices=list(TINY_ARCHS), default='qwen3_vl', help='model generation')
    parser.add_argument('--seed', type=int, default=0, help='weight initialisation seed')
    args = parser.parse_args()
    print(build_tiny_model(args.out_dir, arch=args.arch, seed=args.seed))
