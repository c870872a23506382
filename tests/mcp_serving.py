"""``pepperpy mcp serve`` run for real in a subprocess, for the MCP tests and the conformance suite."""

from __future__ import annotations

import queue
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pepperpy.cli.mcp import SDK_PLUGIN
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.command import environment

_URL = re.compile(r"at (http://127\.0\.0\.1:\d+/mcp) ")
START_TIMEOUT_S = 300  # the first start may install the mcp SDK and the local embeddings


def serve_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "pepperpy", "mcp", "serve", *args]


def require_sdk(home: Path) -> None:
    """The ``mcp`` SDK importable in this process, from the SDK plugin's env in ``home`` (installed there by uv on first
    use, the env the served command uses too)."""
    PluginManager(search_paths=[builtin_plugins_dir()], home=home).load_class(*SDK_PLUGIN)


@contextmanager
def serving_http(home: Path, *args: str) -> Iterator[str]:
    """``pepperpy mcp serve --http 0 ARGS`` with ``home`` as PEPPERPY_HOME; yields its URL, stops it after."""
    process = subprocess.Popen(serve_command("--http", "0", *args), stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment(home),
                               cwd=home.parent)
    lines: queue.Queue[str | None] = queue.Queue()
    stderr: list[str] = []

    def read() -> None:
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    try:
        while True:
            line = lines.get(timeout=START_TIMEOUT_S)
            if line is None:
                raise RuntimeError(f"pepperpy mcp serve exited with {process.wait()}: {''.join(stderr)}")
            stderr.append(line)
            if found := _URL.search(line):
                break
        yield found.group(1)
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


__all__ = ["require_sdk", "serve_command", "serving_http"]
