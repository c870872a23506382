"""The facade's lifecycle with real parts: HTTP clients across event loops, garbage collection, the sync
path keeping the real local model loaded, and a first install inside a running loop.

The HTTP tests talk to tests/servers/scripted.py (a local server answering the Chat Completions format);
the install test runs a real uv install of a real package in a child process with a fresh home.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import subprocess
import sys
import textwrap
import warnings

import pytest

from pepperpy import PepperPy
from tests.servers.scripted import Reply, chat_answer

pytestmark = pytest.mark.integration


def http_pepper(remote_manager, scripted) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_llm("openai", base_url=scripted.base_url, api_key="k")


def collect_resource_warnings(action) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action()
        gc.collect()
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]


def test_one_pepperpy_from_two_asyncio_runs(remote_manager, scripted):
    scripted.reset(Reply(json=chat_answer("first")), Reply(json=chat_answer("second")))
    pepper = http_pepper(remote_manager, scripted)
    answers = []

    async def ask():
        answers.append((await pepper.chat.with_user("hi").generate()).content)

    def both():
        asyncio.run(ask())
        assert not pepper.llm.initialized, "closed when its loop shut down"
        asyncio.run(ask())

    assert collect_resource_warnings(both) == []
    assert answers == ["first", "second"]
    assert not pepper.llm.initialized


def test_use_after_the_block_reopens_and_closes_with_the_loop(remote_manager, scripted):
    scripted.reset(Reply(json=chat_answer("in")), Reply(json=chat_answer("after")))
    pepper = http_pepper(remote_manager, scripted)

    async def main():
        async with pepper:
            assert (await pepper.chat.with_user("x").generate()).content == "in"
        assert not pepper.llm.initialized
        assert (await pepper.chat.with_user("x").generate()).content == "after"
        assert pepper.llm.initialized

    assert collect_resource_warnings(lambda: asyncio.run(main())) == []
    assert not pepper.llm.initialized


def test_a_garbage_collected_pepperpy_closes_its_providers(remote_manager, scripted):
    scripted.reset(Reply(json=chat_answer("ok")))

    async def main():
        pepper = http_pepper(remote_manager, scripted)
        await pepper.chat.with_user("x").generate()
        provider, client = pepper.llm, pepper.llm.endpoint.client
        del pepper
        gc.collect()
        for _ in range(5):
            await asyncio.sleep(0)
        assert not provider.initialized and client.is_closed

    assert collect_resource_warnings(lambda: asyncio.run(main())) == []


def test_the_sync_path_loads_the_local_model_once(local_manager):
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, max_tokens=4, seed=1)
    first = pepper.chat.with_user("Say hi.").generate_sync()
    model = pepper.llm._server
    second = pepper.chat.with_user("Say hi.").generate_sync()
    assert pepper.llm._server is model, "the model stays loaded between sync calls"
    assert first.content == second.content
    pepper.close()
    assert not pepper.llm.initialized


INSTALLING_PLUGIN = '''
from text_unidecode import unidecode

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=unidecode(messages[-1].content))
'''

HEARTBEAT_CHILD = textwrap.dedent(
    """
    import asyncio, json, sys, time
    from pepperpy import PepperPy
    from pepperpy.errors import PepperPyError
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])

    async def main():
        ticks = []

        async def heartbeat():
            while True:
                ticks.append(time.perf_counter())
                await asyncio.sleep(0.01)

        beat = asyncio.create_task(heartbeat())
        await asyncio.sleep(0.05)
        outcome = {}
        try:
            PepperPy(plugin_manager=manager).with_llm("unidecodr")
        except PepperPyError as exc:
            outcome["unknown"] = str(exc)
        pepper = PepperPy(plugin_manager=manager).with_llm("unidecoder")
        bad_option = PepperPy(plugin_manager=manager).with_llm("unidecoder", bogus=1)
        outcome["before_open"] = repr(pepper.llm)
        try:
            pepper.llm.prefix = "x"
        except PepperPyError as exc:
            outcome["assigned_before_open"] = str(exc)
        started = time.perf_counter()
        async with pepper:
            finished = time.perf_counter()
            outcome["answer"] = (await pepper.chat.with_user("Résumé naïve").generate()).content
        try:
            async with bad_option:
                pass
        except PepperPyError as exc:
            outcome["bad_option"] = str(exc)
        beat.cancel()
        outcome["ticks_during_install"] = sum(started < t < finished for t in ticks)
        print(json.dumps(outcome))

    asyncio.run(main())
    """
)


def test_a_first_install_inside_a_running_loop_lets_other_tasks_run(tmp_path, make_plugin):
    make_plugin("unidecoder", files={"provider.py": INSTALLING_PLUGIN, "requirements.txt": "text-unidecode==1.3\n"})
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run(
        [sys.executable, "-c", HEARTBEAT_CHILD, str(tmp_path / "plugins"), str(tmp_path / "home")],
        capture_output=True, text=True, env=env, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout.strip().splitlines()[-1])
    assert "did you mean llm/unidecoder" in outcome["unknown"], "an unknown name still fails at with_*"
    assert outcome["before_open"].startswith("PendingProvider(llm/unidecoder")
    assert "pass prefix=... to with_llm(...)" in outcome["assigned_before_open"], "not silently ignored"
    assert outcome["answer"] == "Resume naive"
    assert "unknown option 'bogus' for llm/unidecoder" in outcome["bad_option"], "options are validated when it opens"
    assert outcome["ticks_during_install"] >= 3, "the event loop kept running during the install"
