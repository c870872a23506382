"""The ``mcp/sdk`` plugin carries the ``mcp`` SDK's requirement: PepperPy's MCP code asks the plugin manager to make
it importable (``uv`` installs it into the plugin's env on first use), so ``import pepperpy`` never needs it."""

from __future__ import annotations

from pepperpy.plugins import PepperpyPlugin


class MCPSDK(PepperpyPlugin):
    """No behaviour: the folder exists for its requirements.txt."""
