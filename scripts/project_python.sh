# Sourced by the project's shell scripts: `project_python REPO` prints the interpreter to run the toolkit with.
#   1. $PYTHON, when set: an explicit choice always wins;
#   2. REPO/.venv/bin/python, the venv scripts/install.sh builds, so nothing needs activating;
#   3. python3 from PATH.
project_python() {
  if [[ -n "${PYTHON:-}" ]]; then
    echo "$PYTHON"
  elif [[ -x "$1/.venv/bin/python" ]]; then
    echo "$1/.venv/bin/python"
  else
    echo python3
  fi
}
