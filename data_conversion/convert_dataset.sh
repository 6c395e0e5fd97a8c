#!/usr/bin/env bash
# Convert a raw annotation export into the training JSONL, then check it.
#   data_conversion/convert_dataset.sh EXPORT.json IMAGES_DIR OUT.jsonl [DATASET_NAME]
set -euo pipefail
if [[ $# -lt 3 || "$1" == "-h" || "$1" == "--help" ]]; then
  echo "usage: $0 EXPORT.json IMAGES_DIR OUT.jsonl [DATASET_NAME]" >&2
  echo "Converts with python -m data_conversion.convert_raw, then runs python -m src.datasets.validate." >&2
  echo "Python: \$PYTHON if set, else the repository's .venv/bin/python, else python3." >&2
  exit 2
fi
annotations=$(realpath "$1"); images=$(realpath "$2"); out=$(realpath -m "$3")
cd "$(dirname "$0")/.."
source scripts/project_python.sh
python=$(project_python "$PWD")
"$python" -m data_conversion.convert_raw --annotations "$annotations" --images "$images" --out "$out" --dataset "${4:-raw}"
"$python" -m src.datasets.validate "$out"
