#!/usr/bin/env bash
# One install step for every README command and CI: a project venv in .venv with torch 2.13.0 (CPU) first.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install --quiet torch==2.13.0
.venv/bin/python -m pip install --quiet -r requirements.txt
got=$(.venv/bin/python -c 'import torch; print(torch.__version__)')
case "$got" in
  2.13.0*) ;;
  *) echo "install.sh: expected torch 2.13.0, found $got; remove .venv and rerun" >&2; exit 1 ;;
esac
# Compile the numba kernels (texture, refinement) into their on-disk caches now, so the app's first frames do not.
.venv/bin/python -m app.warmup
