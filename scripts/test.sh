#!/usr/bin/env bash
# Installs, lints and runs the test suite (README's second command; .ci/run calls this).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/ruff check .
.venv/bin/python -m pytest -q tests "$@"
