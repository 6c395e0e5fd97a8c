#!/usr/bin/env bash
# The prepared GPU check (benchmarks/gpu_suite.py): at most 9 minutes on one GPU, each step guarded.
#   bash benchmarks/gpu_suite.sh --wheelhouse wheelhouse --out results.md     # on the GPU machine
#   bash benchmarks/gpu_suite.sh --dry-run                                    # anywhere: plan, imports, wheel list
# The interpreter: $PYTHON, else the project's .venv, else python3 (on the GPU machine, the one holding its torch).
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
source "$REPO/scripts/project_python.sh"
cd "$REPO"
exec "$(project_python "$REPO")" benchmarks/gpu_suite.py "$@"
