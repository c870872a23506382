#!/usr/bin/env bash
# Sets up .venv (scripts/setup.sh) and runs examples/quickstart.py.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python examples/quickstart.py "$@"
