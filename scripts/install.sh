#!/usr/bin/env bash
# Install everything the toolkit and its tests need, from the repository root:
#   bash scripts/install.sh
# 1. Debian's chromium, which the gallery test opens pages in (skipped when present, or without apt/root);
# 2. a virtual environment in .venv with the pinned Python packages (pyproject.toml + requirements/lock.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null; then
    if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "note: chromium not installed (needs root and apt-get); the gallery browser test will be skipped" >&2
    fi
fi
python3.11 -m venv .venv
.venv/bin/pip install -c requirements/lock.txt -e ".[test]"
