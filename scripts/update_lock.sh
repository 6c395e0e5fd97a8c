#!/usr/bin/env bash
# Regenerate requirements/lock.txt from the venv that scripts/install.sh built, then check it.
#   bash scripts/install.sh && bash scripts/update_lock.sh
# Every line must be `name==version` from the package registry: a wheel path or URL pinned here would install only on
# the machine that wrote the lock (tests/test_requirements.py checks this in the default suite).
set -euo pipefail
cd "$(dirname "$0")/.."
{
  echo "# The whole resolved set, from: bash scripts/install.sh && bash scripts/update_lock.sh (pip freeze of .venv)."
  .venv/bin/pip freeze --exclude-editable
} > requirements/lock.txt.new
if grep -vE '^(#.*|[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9._+!-]+)$' requirements/lock.txt.new; then
  echo "update_lock.sh: the lines above are not name==version (a local wheel or URL?); install from the registry" >&2
  rm requirements/lock.txt.new
  exit 1
fi
mv requirements/lock.txt.new requirements/lock.txt
echo "requirements/lock.txt: $(grep -vc '^#' requirements/lock.txt) packages"
