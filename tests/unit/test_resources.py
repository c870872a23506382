"""Shared resources (pepperpy._resources): created lazily, shared per manager, refcounted, cleaned up exactly once."""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import httpx
import pytest

from pepperpy.errors import ConfigError, PluginError
from pepperpy.plugin_manager import PluginManager
from pepperpy.plugins import PepperpyPlugin, ResourceMixin

# The plugin-system document's example, as written there.
DOCUMENT_EXAMPLE = '''
from pepperpy.plugins import ResourceMixin, PepperpyPlugin

class ResourcePlugin(PepperpyPlugin, ResourceMixin):
    async def initialize(self):
        if self.initialized:
            return
        self.db = await self.get_resource("database", factory=self.create_db_connection, cleanup=self.close_db_connection)
        self.initialized = True
    async def create_db_connection(self):
        self.logger.info("Creating DB connection")
        return {"connection": "db://example"}
    async def close_db_connection(self, db):
        self.logger.info("Closing DB connection")
'''


@pytest.fixture
def logged():
    from loguru import logger

    messages: list[str] = []
    sink = logger.add(lambda message: messages.append(message.record["message"]), level="INFO")
    logger.enable("pepperpy")
    yield messages
    logger.disable("pepperpy")
    logger.remove(sink)


async def test_the_document_example_shares_one_connection(manager, make_plugin, logged):
    make_plugin(
        "resources", category="demo", entry_point="provider:ResourcePlugin", files={"provider.py": DOCUMENT_EXAMPLE}
    )
    first, second = manager.create_provider("demo", "resources"), manager.create_provider("demo", "resources")
    async with first:
        async with second:
            assert first.db is second.db == {"connection": "db://example"}
        assert logged == ["Creating DB connection"], "still held by the first"
    assert logged == ["Creating DB connection", "Closing DB connection"]
    async with first:  # a new connection after the last holder closed
        pass
    assert logged == ["Creating DB connection", "Closing DB connection"] * 2


class Recorder:
    """Factories and cleanups, sync and async, that record what happened."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self.made = 0

    def make(self) -> dict:
        self.made += 1
        self.events.append(f"make {self.made}")
        return {"n": self.made}

    async def amake(self) -> dict:
        await asyncio.sleep(0.01)
        return self.make()

    def close(self, value: dict) -> None:
        self.events.append(f"close {value['n']}")

    async def aclose(self, value: dict) -> None:
        await asyncio.sleep(0)
        self.close(value)


def user_class(recorder: Recorder, name: str = "thing", asynchronous: bool = True, per_loop: bool = False) -> type:
    class User(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            factory, cleanup = (recorder.amake, recorder.aclose) if asynchronous else (recorder.make, recorder.close)
            self.thing = await self.get_resource(name, factory=factory, cleanup=cleanup, per_loop=per_loop)

        async def cleanup(self):
            recorder.events.append(f"author cleanup sees {self.thing['n']}")

    return User


def users(manager: PluginManager, cls: type, count: int) -> list:
    manager.register_plugin("demo", "user", cls)
    return [manager.create_provider("demo", "user") for _ in range(count)]


@pytest.mark.parametrize("asynchronous", [True, False], ids=["async", "sync"])
async def test_created_once_and_cleaned_once_after_the_authors_cleanup(manager, asynchronous):
    recorder = Recorder()
    providers = users(manager, user_class(recorder, asynchronous=asynchronous), 10)
    await asyncio.gather(*(p.initialize() for p in providers))  # concurrent first requests: one creation
    assert recorder.made == 1 and all(p.thing is providers[0].thing for p in providers)
    table = manager.shared_resources
    assert table.holders("thing") == 10
    for provider in providers[:-1]:
        await provider.cleanup()
    assert "close 1" not in recorder.events and table.holders("thing") == 1
    await providers[-1].cleanup()
    assert recorder.events[-2:] == ["author cleanup sees 1", "close 1"], "released after the author's cleanup"
    assert recorder.events.count("close 1") == 1 and table.holders("thing") is None


async def test_a_provider_asking_twice_holds_one_reference(manager):
    recorder = Recorder()

    class Greedy(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            one = await self.get_resource("thing", recorder.make, recorder.close)
            two, three = await asyncio.gather(
                self.get_resource("thing", recorder.make), self.get_resource("thing", recorder.make)
            )
            assert one is two is three

    (provider,) = users(manager, Greedy, 1)
    async with provider:
        assert manager.shared_resources.holders("thing") == 1
    assert recorder.events == ["make 1", "close 1"]


async def test_managers_do_not_share(manager, tmp_path):
    recorder = Recorder()
    other = PluginManager(search_paths=[tmp_path / "plugins"], home=tmp_path / "home2")
    (mine,), (theirs,) = users(manager, user_class(recorder), 1), users(other, user_class(recorder), 1)
    async with mine, theirs:
        assert mine.thing is not theirs.thing
    assert sorted(e for e in recorder.events if not e.startswith("author")) == ["close 1", "close 2", "make 1", "make 2"]


async def test_a_failed_creation_reaches_every_waiter_and_is_not_remembered(manager):
    attempts = []

    async def broken():
        attempts.append(1)
        await asyncio.sleep(0.01)
        if len(attempts) == 1:
            raise OSError("database down")
        return "db"

    class User(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            self.db = await self.get_resource("db", broken)

    providers = users(manager, User, 3)
    outcomes = await asyncio.gather(*(p.initialize() for p in providers), return_exceptions=True)
    assert [type(o.__cause__) for o in outcomes] == [OSError] * 3 and len(attempts) == 1  # each a PluginError
    assert not any(p.initialized for p in providers)
    async with providers[0]:
        assert providers[0].db == "db" and len(attempts) == 2


async def test_a_cancelled_creation_lets_a_waiter_create_it(manager):
    started = asyncio.Event()

    async def slow():
        started.set()
        await asyncio.sleep(0.05)
        return object()

    class User(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            self.db = await self.get_resource("db", slow)

    first, second = users(manager, User, 2)
    opening = asyncio.ensure_future(first.initialize())
    await started.wait()
    waiting = asyncio.ensure_future(second.initialize())
    await asyncio.sleep(0)
    opening.cancel()
    await asyncio.gather(opening, return_exceptions=True)
    await waiting
    assert second.initialized and not first.initialized
    await second.cleanup()
    assert manager.shared_resources.holders("db") is None


async def test_a_failed_open_releases_what_it_acquired(manager):
    recorder = Recorder()

    class Fragile(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            await self.get_resource("thing", recorder.make, recorder.close)
            raise RuntimeError("boom")

    (provider,) = users(manager, Fragile, 1)
    with pytest.raises(PluginError, match="raised RuntimeError: boom"):
        await provider.initialize()
    assert recorder.events == ["make 1", "close 1"]


async def test_released_before_the_owned_dependencies_close(manager):
    events = []

    class Dependency(PepperpyPlugin):
        async def cleanup(self):
            events.append("dependency closed")

    class User(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            await self.get_resource("thing", object, lambda _: events.append("resource cleaned"))

    manager.register_plugin("demo", "dep", Dependency)
    (user,) = users(manager, User, 1)
    user.set_dependency("dep", manager.create_provider("demo", "dep"))
    async with user:
        pass
    assert events == ["resource cleaned", "dependency closed"]


async def test_a_failing_cleanup_is_raised_once_and_the_resource_is_forgotten(manager):
    def bad_cleanup(value):
        raise OSError("cannot close")

    class User(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            await self.get_resource("thing", object, bad_cleanup)

    (provider,) = users(manager, User, 1)
    await provider.initialize()
    with pytest.raises(OSError, match="cannot close"):
        await provider.cleanup()
    assert not provider.initialized
    assert manager.shared_resources.holders("thing") is None
    await provider.cleanup()  # nothing left to release


async def test_asking_while_closed_is_a_clear_error(manager):
    (provider,) = users(manager, user_class(Recorder()), 1)
    with pytest.raises(ConfigError, match=r"get_resource\('x'\) needs the provider open or opening"):
        await provider.get_resource("x", object)


async def test_the_mixin_needs_a_plugin():
    class Lonely(ResourceMixin):
        pass

    with pytest.raises(TypeError, match="needs PepperpyPlugin"):
        await Lonely().get_resource("x", object)


def test_one_creation_across_threads_and_loops(manager):
    made = []
    lock = threading.Lock()

    async def slow():
        await asyncio.sleep(0.05)
        with lock:
            made.append(1)
        return object()

    class User(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            self.db = await self.get_resource("db", slow)

    providers = users(manager, User, 4)
    barrier = threading.Barrier(4)

    def run(provider):
        async def main():
            barrier.wait()
            await provider.initialize()
        asyncio.run(main())

    threads = [threading.Thread(target=run, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert made == [1] and len({id(p.db) for p in providers}) == 1


# -- per-loop resources ---------------------------------------------------------------


def test_a_per_loop_resource_is_kept_while_its_loop_runs_and_cleaned_when_it_shuts_down(manager):
    recorder = Recorder()
    first, second = users(manager, user_class(recorder, per_loop=True), 2)

    async def main():
        async with first:
            pass
        assert recorder.events == ["make 1", "author cleanup sees 1"], "kept with no holder"
        async with second:
            assert second.thing == {"n": 1}, "the second provider reuses it"
        assert manager.shared_resources.holders("thing", asyncio.get_running_loop()) == 0

    asyncio.run(main())
    assert recorder.events[-1] == "close 1" and recorder.events.count("close 1") == 1
    assert manager.shared_resources.names() == []

    async def again():
        async with first:
            assert first.thing == {"n": 2}, "a new loop, a new object"

    asyncio.run(again())
    assert recorder.events[-1] == "close 2"


async def test_a_per_loop_resource_held_when_its_loop_shuts_down_is_cleaned_by_the_last_holder(manager):
    recorder = Recorder()
    (provider,) = users(manager, user_class(recorder, per_loop=True), 1)
    await provider.initialize()
    table = manager.shared_resources
    await table._loop_shutting_down(asyncio.get_running_loop())  # what asyncio.run() triggers at its end
    assert "close 1" not in recorder.events, "a holder is still open"
    await provider.cleanup()
    assert recorder.events[-1] == "close 1" and table.names() == []


def test_loops_get_their_own_per_loop_resource(manager):
    recorder = Recorder()
    providers = users(manager, user_class(recorder, per_loop=True), 2)
    seen = []

    def run(provider):
        async def main():
            async with provider:
                seen.append(provider.thing["n"])
        asyncio.run(main())

    threads = [threading.Thread(target=run, args=(p,)) for p in providers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == [1, 2]
    assert sorted(e for e in recorder.events if e.startswith("close")) == ["close 1", "close 2"]


# -- interpreter exit -------------------------------------------------------------------

EXIT_CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from loguru import logger
    from pepperpy.plugin_manager import PluginManager
    from pepperpy.plugins import PepperpyPlugin, ResourceMixin

    logger.remove()
    logger.add(sys.stdout, format="{message}", level="WARNING")
    logger.enable("pepperpy")
    manager = PluginManager(search_paths=[], home=sys.argv[1])


    async def async_close(value):
        print("async cleanup ran for", value, flush=True)


    class Leaky(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            await self.get_resource("sync", lambda: "s", lambda value: print("sync cleanup ran for", value, flush=True))
            await self.get_resource("async", lambda: "a", async_close)

    manager.register_plugin("demo", "leaky", Leaky)

    async def main():
        await manager.create_provider("demo", "leaky").initialize()  # never closed

    if sys.argv[2] == "closed-loop":
        asyncio.run(main())
    else:  # the loop is still running, in another thread (like a sync runner's)
        import threading
        loop = asyncio.new_event_loop()
        threading.Thread(target=loop.run_forever, daemon=True).start()
        asyncio.run_coroutine_threadsafe(main(), loop).result()
    print("exiting", flush=True)
    """
)


@pytest.mark.parametrize("mode", ["closed-loop", "running-loop"])
def test_resources_still_held_at_exit_are_cleaned_up(tmp_path, mode):
    done = subprocess.run(
        [sys.executable, "-W", "error::RuntimeWarning", "-c", EXIT_CHILD, str(tmp_path / "home"), mode],
        capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "exiting"
    assert "sync cleanup ran for s" in lines
    if mode == "running-loop":
        assert "async cleanup ran for a" in lines
    else:
        assert "async cleanup ran for a" not in lines
        assert any("'async' was not cleaned up at interpreter exit" in line and "loop" in line for line in lines)
    assert "never awaited" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


# -- the pooled HTTP clients of remote providers -------------------------------------------


def test_remote_providers_share_a_per_loop_pool_kept_until_the_loop_ends(builtin_manager):
    config = {"base_url": "http://127.0.0.1:9/v1", "api_key": "k"}
    first = builtin_manager.create_provider("llm", "openai", **config)
    second = builtin_manager.create_provider("llm", "openai", **config)
    other = builtin_manager.create_provider("llm", "openai", **{**config, "base_url": "http://127.0.0.1:10/v1"})
    seen = {}

    async def main():
        async with first, second, other:
            handles = first.endpoint.client, second.endpoint.client
            assert handles[0] is not handles[1] and handles[0].transport is handles[1].transport, "one transport"
            assert other.endpoint.client.transport is not handles[0].transport, "one per base URL"
            assert handles[0].base_url == "http://127.0.0.1:9/v1/"
        assert all(handle.is_closed for handle in handles) and not handles[0].pool.is_closed, "kept for the next"
        with pytest.raises(RuntimeError, match="client has been closed"):
            await handles[0].send(httpx.Request("POST", handles[0].url("chat/completions")))
        async with first:
            assert first.endpoint.client.transport is handles[0].transport, "reused"
        seen["pooled"] = handles[0].pool

    asyncio.run(main())
    assert seen["pooled"].is_closed, "closed when its loop shut down"
    assert builtin_manager.shared_resources.names() == ["http_ssl_context"]  # kept for the process (shared_resource)


async def test_shared_resource_and_get_resource_are_one_table(manager):
    """shared_resource keeps its object in the same refcounted table as get_resource: one object per manager and
    name, which a provider's close never cleans up (it is kept for the process)."""
    closed = []

    class Keeper(PepperpyPlugin, ResourceMixin):
        async def initialize(self):
            self.kept = self.shared_resource("lock", threading.Lock)
            self.held = await self.get_resource("lock", threading.Lock, closed.append)

    manager.register_plugin("demo", "keeper", Keeper)
    first, second = manager.create_provider("demo", "keeper"), manager.create_provider("demo", "keeper")
    async with first, second:
        assert first.kept is first.held is second.kept is second.held
        assert manager.shared_resources.holders("lock") == 2
    assert closed == [] and manager.shared_resources.names() == ["lock"]
    assert manager.shared_resources.holders("lock") == 0


def test_shared_resource_from_many_threads_keeps_one_object(manager):
    manager.register_plugin("demo", "plain", type("Plain", (PepperpyPlugin,), {}))
    provider = manager.create_provider("demo", "plain")
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        seen = list(pool.map(lambda _: provider.shared_resource("cache", dict), range(64)))
    assert all(value is seen[0] for value in seen)
    assert manager.create_provider("demo", "plain").shared_resource("cache", dict) is seen[0]
