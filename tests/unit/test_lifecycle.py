"""One lifecycle, whoever opens: initialize/cleanup bodies run exactly once per open and per close."""

from __future__ import annotations

import asyncio

import pytest

from pepperpy.errors import ConfigError, PluginError
from pepperpy.plugins import PepperpyPlugin, auto_context

# The plugin-system document's own example, as written there.
DESIGN_DOCUMENT_PLUGIN = '''
from typing import Dict, Any
from pepperpy.plugins import PepperpyPlugin

EVENTS = []


class CustomPlugin(PepperpyPlugin):
    """Custom plugin implementation."""

    # Configuration attributes with defaults
    param1: str = "default"
    param2: int = 42

    async def initialize(self):
        """Initialize the plugin."""
        if self.initialized:
            return

        self.logger.info(f"Initializing with {self.param1}, {self.param2}")
        EVENTS.append("initialize")
        self.initialized = True

    async def process(self, data: Dict[str, Any]) -> Dict[str, Any]:
        """Process data with the plugin."""
        if not self.initialized:
            await self.initialize()

        result = {"processed": data, "param1": self.param1}
        return result

    async def cleanup(self):
        """Clean up resources."""
        if not self.initialized:
            return

        self.logger.info("Cleaning up")
        EVENTS.append("cleanup")
        self.initialized = False
'''


@pytest.fixture
def custom(manager, make_plugin):
    make_plugin("example", category="custom", entry_point="provider:CustomPlugin", files={"provider.py": DESIGN_DOCUMENT_PLUGIN})
    plugin = manager.create_provider("custom", "example", param1="set")
    import sys

    events = sys.modules[type(plugin).__module__].EVENTS
    events.clear()
    return plugin, events


async def test_the_design_documents_plugin_runs_as_written(custom):
    plugin, events = custom
    assert await plugin.process({"a": 1}) == {"processed": {"a": 1}, "param1": "set"}
    assert plugin.initialized
    await plugin.process({"b": 2})
    await plugin.initialize()
    await plugin.cleanup()
    await plugin.cleanup()
    assert events == ["initialize", "cleanup"]
    assert not plugin.initialized


async def test_concurrent_initialize_and_cleanup_run_once(custom):
    plugin, events = custom
    await asyncio.gather(*(plugin.initialize() for _ in range(20)))
    await asyncio.gather(*(plugin.cleanup() for _ in range(20)))
    assert events == ["initialize", "cleanup"]


async def test_a_provider_reopens_after_close(custom):
    plugin, events = custom
    for _ in range(3):
        async with plugin:
            assert plugin.initialized
    assert events == ["initialize", "cleanup"] * 3


class Recorder(PepperpyPlugin):
    """No guard at all, and state set during initialize."""

    def __init__(self, **config):
        super().__init__(**config)
        self.events: list[str] = []

    async def initialize(self):
        self.events.append(f"base initialize, initialized={self.initialized}")
        await asyncio.sleep(0.01)

    async def cleanup(self):
        self.events.append(f"base cleanup, initialized={self.initialized}")


class Child(Recorder):
    async def initialize(self):
        await super().initialize()
        self.events.append("child initialize")
        await self.initialize()  # nested: returns at once, no deadlock

    async def cleanup(self):
        self.events.append("child cleanup")
        await super().cleanup()
        await self.cleanup()


async def test_super_chains_run_each_level_once_and_nested_calls_return():
    child = Child()
    await asyncio.gather(child.initialize(), child.initialize())
    await child.initialize()
    await child.cleanup()
    await child.cleanup()
    assert child.events == [
        "base initialize, initialized=False", "child initialize", "child cleanup", "base cleanup, initialized=True",
    ]


async def test_a_failed_open_leaves_the_provider_unopened_and_retryable():
    class Flaky(PepperpyPlugin):
        def __init__(self, **config):
            super().__init__(**config)
            self.attempts = 0

        async def initialize(self):
            self.attempts += 1
            if self.attempts == 1:
                raise RuntimeError("first open fails")

    flaky = Flaky()
    with pytest.raises(PluginError, match=r"initialize\(\) raised RuntimeError: first open fails") as failed:
        await flaky.initialize()
    assert isinstance(failed.value.__cause__, RuntimeError)
    assert not flaky.initialized
    await flaky.initialize()
    assert flaky.initialized and flaky.attempts == 2


async def test_dependencies_open_first_and_close_last():
    events: list[str] = []

    class Named(PepperpyPlugin):
        label: str = ""

        async def initialize(self):
            events.append(f"open {self.label}")

        async def cleanup(self):
            events.append(f"close {self.label}")

    embeddings, store = Named(label="embeddings"), Named(label="store")
    store.set_dependency("embeddings", embeddings)
    assert dict(store.dependencies) == {"embeddings": embeddings}
    async with auto_context(store):
        assert embeddings.initialized
    assert events == ["open embeddings", "open store", "close store", "close embeddings"]
    events.clear()
    async with embeddings:  # a dependency already open belongs to whoever opened it
        async with store:
            pass
        assert embeddings.initialized
    assert events == ["open embeddings", "open store", "close store", "close embeddings"]


async def test_a_provider_works_from_two_event_loops_in_turn():
    class Loopy(PepperpyPlugin):
        async def initialize(self):
            self.loop = asyncio.get_running_loop()

    provider = Loopy()

    async def cycle():
        await asyncio.gather(provider.initialize(), provider.initialize())
        assert provider.loop is asyncio.get_running_loop()
        await provider.cleanup()

    await cycle()
    await asyncio.to_thread(asyncio.run, cycle())


async def test_author_assignments_to_initialized_are_harmless(custom):
    plugin, _ = custom
    plugin.initialized = True
    assert not plugin.initialized
    with pytest.raises(ConfigError, match="needs the provider open"):
        plugin.check_open("process")


async def test_open_with_and_disown_are_the_lifecycles_only_doors():
    """Code outside core (a runtime dependency, a hot reload) changes who closes what through core's functions."""
    from pepperpy.core import State, disown, open_with

    events: list[str] = []

    class Named(PepperpyPlugin):
        label: str = ""

        async def initialize(self):
            events.append(f"open {self.label}")

        async def cleanup(self):
            events.append(f"close {self.label}")

    owner, late, kept = Named(label="owner"), Named(label="late"), Named(label="kept")
    await open_with(owner, late)  # owner closed: nothing opens
    assert late.lifecycle_state is State.UNOPENED and events == []
    async with owner:
        await open_with(owner, late)
        await open_with(owner, kept)
        disown(owner, [kept])  # kept serves on elsewhere
    assert events == ["open owner", "open late", "open kept", "close owner", "close late"]
    assert kept.lifecycle_state is State.OPEN
    await kept.cleanup()
