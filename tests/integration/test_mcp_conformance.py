"""The official MCP conformance suite against PepperPy: its server mode against `pepperpy mcp serve --http`, its
client mode (scenarios `initialize`, `tools_call`) with tests/mcp_conformance_client.py.

Node 24 and the suite are installed from the npm registry by tests/mcp_conformance.py (pinned, cached). These
tests skip only when npm cannot reach the registry, and say so.
"""

from __future__ import annotations

import pytest

from tests import mcp_conformance
from tests.command import environment
from tests.mcp_serving import require_sdk, serving_http

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def suite() -> mcp_conformance.Suite:
    try:
        return mcp_conformance.install()
    except mcp_conformance.RegistryUnreachable as exc:
        pytest.skip(f"the MCP conformance suite cannot be installed: {exc}")


@pytest.fixture(scope="module")
def mcp_home(session_home):
    require_sdk(session_home)
    return session_home


def _summary(done) -> str:
    return f"exit {done.returncode}\n{done.stdout[-6000:]}\n{done.stderr[-3000:]}"


def test_server_mode_passes_every_scenario_a_store_server_can(suite, mcp_home, tmp_path):
    results = tmp_path / "results"
    results.mkdir()
    with serving_http(mcp_home, "--path", str(tmp_path / "store.sqlite3"), "--llm", "mock", "--allow-writes") as url:
        done = mcp_conformance.run_server_mode(suite, url, results)
    assert done.returncode == 0, _summary(done)
    passed = {check["id"] for check in mcp_conformance.checks(results) if check["status"] == "SUCCESS"}
    # The protocol itself, whatever the tools: the handshake, ping, listing, and localhost's DNS-rebinding guard.
    assert {"server-initialize", "ping", "tools-list"} <= passed, _summary(done)
    assert {"localhost-host-rebinding-rejected", "localhost-host-valid-accepted"} <= passed, _summary(done)


@pytest.mark.parametrize("scenario", mcp_conformance.CLIENT_SCENARIOS)
def test_client_mode_scenario(suite, mcp_home, tmp_path, scenario):
    done = mcp_conformance.run_client_mode(suite, scenario, tmp_path, env=environment(mcp_home))
    assert done.returncode == 0, _summary(done)
    checks = mcp_conformance.checks(tmp_path)
    assert checks and all(check["status"] in ("SUCCESS", "INFO") for check in checks), _summary(done)
    assert any(check["status"] == "SUCCESS" for check in checks), _summary(done)
