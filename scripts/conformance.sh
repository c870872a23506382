#!/usr/bin/env bash
# Runs the official MCP conformance suite by hand: server mode against `pepperpy mcp serve --http`, and
# client mode (initialize, tools_call) with tests/mcp_conformance_client.py. Installs Node and the suite
# into a cache folder on first use (tests/mcp_conformance.py says where). The test suite runs the same
# (tests/integration/test_mcp_conformance.py): `bash scripts/conformance.sh` is that test file alone.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/python -m pytest -p no:cacheprovider -v tests/integration/test_mcp_conformance.py "$@"
