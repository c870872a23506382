"""Shared resources with real parts: llm/openai's pooled HTTP clients over 1,000 open/close cycles, and the example.

The HTTP tests talk to tests/servers/scripted.py (a local server answering the Chat Completions format, run in
this process: its sockets count in /proc/self/fd too, so a connection left open on either side shows).
"""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from pepperpy import PepperPy
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.servers.scripted import Reply, chat_answer

pytestmark = pytest.mark.integration
CYCLES = 1_000
LOOPS = 300  # one asyncio.run() each
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def fd_targets() -> set[str]:
    targets = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            targets.add(f"{fd}->{os.readlink(f'/proc/self/fd/{fd}')}")
        except OSError:
            pass
    return targets


def steady_fds(quiet_s: float = 0.3, timeout_s: float = 5.0) -> int:
    """The fd count once it has not changed for ``quiet_s``: connections of earlier tests may still be closing."""
    deadline = time.monotonic() + timeout_s
    gc.collect()
    count, since = open_fds(), time.monotonic()
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.02)
        gc.collect()
        now = open_fds()
        if now != count:
            count, since = now, time.monotonic()
    return count


def settled_fds(baseline: int, timeout_s: float = 5.0) -> int:
    """The fd count once the server thread has closed its side of the connections the client closed."""
    deadline = time.monotonic() + timeout_s
    while True:
        gc.collect()
        count = open_fds()
        if count <= baseline or time.monotonic() > deadline:
            return count
        time.sleep(0.02)


@pytest.fixture
def fresh_manager(session_home) -> PluginManager:
    """A manager of its own, so that its resource table starts empty."""
    return PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)


def http_pepper(manager: PluginManager, scripted) -> PepperPy:
    return PepperPy(plugin_manager=manager).with_llm("openai", base_url=scripted.base_url, api_key="k")


def run_checking_leaks(action) -> tuple[list[str], int, int]:
    """Run ``action``; return the ResourceWarnings, the fd count before, and the count after (settled).

    A leak shows as ``after > before``; a lower count is a connection of an earlier test closing meanwhile.
    """
    before = steady_fds()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
        gc.collect()
    after = settled_fds(before)
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)], before, after


def test_a_thousand_open_close_cycles_on_one_loop_reuse_one_client_and_leak_nothing(fresh_manager, scripted):
    scripted.reset(*[Reply(json=chat_answer(f"answer {i}")) for i in range(CYCLES + 1)])
    clients, answers, during = set(), [], []

    async def cycle(i: int) -> None:
        async with http_pepper(fresh_manager, scripted) as pepper:
            answers.append((await pepper.chat.with_user(f"q{i}").generate()).content)
            handle = pepper.llm.endpoint.client
            clients.add(id(handle.transport))
        assert handle.is_closed, "the provider's handle closes with it"

    async def main() -> None:
        await cycle(-1)  # the first open creates the pool, its client and one connection
        first = open_fds()
        for i in range(CYCLES):
            await cycle(i)
            if i % 100 == 99:
                during.append(open_fds() - first)
        table = fresh_manager.shared_resources
        assert table.holders("http_clients", asyncio.get_running_loop()) == 0, "kept while the loop runs, unheld"

    warned, before, after = run_checking_leaks(lambda: asyncio.run(main()))
    assert warned == []
    assert len(answers) == CYCLES + 1 and answers[-1] == f"answer {CYCLES}"
    assert len(clients) == 1, "every cycle used the same pooled client"
    assert max(during) <= 0, f"open fds grew during the cycles: {during}"
    assert after <= before, f"{after - before} file descriptors left open after the loop ended"
    assert fresh_manager.shared_resources.names() == ["http_ssl_context"], "the pool was cleaned up with its loop"


def test_each_event_loop_gets_its_pool_closed(fresh_manager, scripted):
    scripted.reset(*[Reply(json=chat_answer("ok")) for _ in range(LOOPS)])
    closed = []

    async def once() -> None:
        async with http_pepper(fresh_manager, scripted) as pepper:
            await pepper.chat.with_user("hi").generate()
            pooled = pepper.llm.endpoint.client.pool
        closed.append(pooled)

    def many() -> None:
        for _ in range(LOOPS):
            asyncio.run(once())
            assert closed[-1].is_closed, "the pool closes when its loop shuts down"

    start = fd_targets()
    warned, before, after = run_checking_leaks(many)
    assert warned == []
    assert after <= before, f"{after - before} file descriptors left open: {fd_targets() - start}"
    assert len(scripted.requests) == LOOPS


def test_the_sync_path_closes_its_pool_with_its_runner(fresh_manager, scripted):
    scripted.reset(*[Reply(json=chat_answer("ok")) for _ in range(50)])

    def many() -> None:
        for _ in range(25):
            pepper = http_pepper(fresh_manager, scripted)
            assert pepper.chat.with_user("hi").generate_sync().content == "ok"
            assert pepper.chat.with_user("hi").generate_sync().content == "ok"
            pooled = pepper.llm.endpoint.client.pool
            pepper.close()
            assert pooled.is_closed

    warned, before, after = run_checking_leaks(many)
    assert warned == [] and after <= before, f"{after - before} file descriptors left open"


def test_a_second_pepperpy_on_the_same_service_reuses_the_pooled_transport(fresh_manager, scripted):
    """Reuse is asserted as behaviour (the same client, no new connection); its speed is in scripts/bench.py."""
    scripted.reset(*[Reply(json=chat_answer("ok")) for _ in range(2)])

    async def main() -> None:
        async with http_pepper(fresh_manager, scripted) as pepper:
            await pepper.chat.with_user("hi").generate()
            pooled = pepper.llm.endpoint.client.transport
        for _ in range(200):
            async with http_pepper(fresh_manager, scripted) as pepper:
                assert pepper.llm.endpoint.client.transport is pooled
        async with http_pepper(fresh_manager, scripted) as pepper:
            assert pepper.llm.endpoint.client.transport is pooled
            assert (await pepper.chat.with_user("hi").generate()).content == "ok"

    asyncio.run(main())


def test_the_resources_example_runs(session_home):
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / "resources.py")], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PEPPERPY_HOME": str(session_home)}, cwd=EXAMPLES.parent,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "  log: Creating DB connection",
        "first provider open",
        "second provider open; same connection: True {'connection': 'db://example'}",
        "second provider closed; the connection stays for the first",
        "  log: Closing DB connection",
        "first provider closed",
    ]
