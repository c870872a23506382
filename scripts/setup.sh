#!/usr/bin/env bash
# Creates .venv with PepperPy (editable) and its test tools. Safe to run again: it only adds what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  "$python" -m venv .venv
fi
if [ ! -x .venv/bin/uv ]; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check uv 2>&1 | grep -v "is ignored: it is neither" || true
fi
.venv/bin/uv pip install --quiet --compile-bytecode --python .venv/bin/python -e ".[test]"  # compiled: the environment may forbid writing .pyc files
# PepperPy's own modules too (installed editable, they would be compiled again by every process and worker).
.venv/bin/python -m compileall -q pepperpy >/dev/null
