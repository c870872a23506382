"""Shared fixtures: plugin folders built in tmp_path, a fresh PluginManager per test, and the 127.0.0.1 test servers."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import settings

from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

# Hypothesis's default 200 ms deadline per example is a timing threshold: on a shared, loaded machine it fails
# correct code. The examples' results are what the tests check, never their speed.
settings.register_profile("pepperpy", deadline=None)
settings.load_profile("pepperpy")

SIMPLE_PROVIDER = '''
from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    prefix: str = ""

    async def generate(self, messages, **options):
        return GenerationResult(content=self.prefix + (messages[-1].content or ""))
'''


def manifest_for(name: str, category: str = "llm", **overrides: Any) -> dict[str, Any]:
    manifest = {
        "name": name,
        "version": "0.1.0",
        "category": category,
        "provider_name": name,
        "description": f"test plugin {name}",
        "entry_point": "provider:EchoProvider",
        "author": "tests",
        "pepperpy_compatibility": ">=0.1.0",
    }
    manifest.update(overrides)
    return manifest


PluginFactory = Callable[..., Path]


@pytest.fixture
def make_plugin(tmp_path: Path) -> PluginFactory:
    """Write a plugin folder: ``make_plugin("echo", files={"provider.py": ...}, **manifest_overrides)``."""

    def make(
        name: str,
        root: Path | None = None,
        files: dict[str, str] | None = None,
        manifest: dict[str, Any] | str | None = None,
        **overrides: Any,
    ) -> Path:
        folder = (root or tmp_path / "plugins") / name
        folder.mkdir(parents=True, exist_ok=True)
        content = manifest if manifest is not None else manifest_for(name, **overrides)
        text = content if isinstance(content, str) else json.dumps(content)
        (folder / "plugin.json").write_text(text)
        for relative, source in ({"provider.py": SIMPLE_PROVIDER} | (files or {})).items():
            (folder / relative).parent.mkdir(parents=True, exist_ok=True)
            (folder / relative).write_text(textwrap.dedent(source))
        return folder

    return make


@pytest.fixture
def manager(tmp_path: Path) -> PluginManager:
    """A PluginManager that sees only ``tmp_path/plugins`` and installs into ``tmp_path/home``."""
    (tmp_path / "plugins").mkdir(exist_ok=True)
    return PluginManager(search_paths=[tmp_path / "plugins"], home=tmp_path / "home")


@pytest.fixture
def builtin_manager(tmp_path: Path) -> PluginManager:
    """A PluginManager that sees the built-in plugins only."""
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")


@pytest.fixture(scope="session")
def scripted_server() -> Iterator[Any]:
    """The scripted HTTP server (tests/servers/scripted.py), for what no real server can show on demand."""
    from tests.servers.scripted import ScriptedServer

    server = ScriptedServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def scripted(scripted_server):
    """The scripted server with an empty script and no recorded requests."""
    scripted_server.reset()
    return scripted_server


@pytest.fixture(scope="session")
def cassette_server() -> Iterator[Any]:
    """The server of recorded traffic (tests/cassette_server.py), for services that cannot run here."""
    from tests.cassette_server import CassetteServer

    server = CassetteServer().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def cassettes(cassette_server):
    """The cassette server with nothing to serve and no recorded requests: ``cassettes.serve(...)`` a cassette."""
    cassette_server.serve([])
    return cassette_server
