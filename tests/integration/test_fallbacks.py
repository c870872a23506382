"""Fallback chains against real failures: a closed port, a missing key, a failing uv install, and the scripted
fault server (429 with a long Retry-After, 5xx, 401, an empty answer, a stream cut after its first chunk —
answers no real server gives on demand); llama.cpp's real server and the mock plugin are the members that answer."""

from __future__ import annotations

import socket

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, PepperPyError, PepperPyErrorGroup, ProviderError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.servers.scripted import Reply, chat_answer, chat_stream_events

pytestmark = pytest.mark.integration


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/v1"


@pytest.fixture
def manager(tmp_path, make_plugin, session_home):
    make_plugin("broken-install", files={"requirements.txt": "pepperpy-no-such-package-xyz==9.9.9\n"})
    return PluginManager(search_paths=[builtin_plugins_dir(), tmp_path / "plugins"], home=session_home)


def served_by(result) -> tuple[str, list[str]]:
    report = result.metadata["fallback"]
    return report["served_by"], [f["member"] for f in report["failed"]]


async def test_a_closed_port_falls_through_to_llama_cpps_real_server(manager, llama_server):
    pepper = PepperPy(plugin_manager=manager).with_llm(
        [("openai", {"base_url": closed_port_url(), "api_key": "k"}), ("llamacpp", {"base_url": llama_server})],
        temperature=0, max_tokens=8,
    )
    assert pepper._llm_provider.name == "openai"
    async with pepper:
        result = await pepper.chat.with_user("Say hi.").generate()
    assert result.content
    assert served_by(result) == ("llamacpp", ["openai"])
    assert "cannot connect" in result.metadata["fallback"]["failed"][0]["error"]


async def test_a_missing_key_and_a_failing_install_fall_through(manager, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    isolated = PluginManager(search_paths=manager.search_paths(), home=tmp_path / "keyless-home")
    pepper = PepperPy(plugin_manager=isolated).with_llm(["openai", "broken-install", ("mock", {"replies": ["served"]})])
    async with pepper:
        result = await pepper.chat.with_user("hi").generate()
    assert result.content == "served"
    assert served_by(result) == ("mock", ["openai", "broken-install"])
    errors = [f["error"] for f in result.metadata["fallback"]["failed"]]
    assert errors[0].startswith("MissingKeyError") and errors[1].startswith("PluginInstallError")


async def test_a_member_never_reached_is_never_installed(manager, tmp_path):
    fresh = PluginManager(search_paths=manager.search_paths(), home=tmp_path / "fresh-home")
    async with PepperPy(plugin_manager=fresh).with_llm([("mock", {"replies": ["first"]}), "broken-install"]) as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "first"
    assert not (tmp_path / "fresh-home" / "envs").exists()


@pytest.mark.parametrize(
    "reply, reason",
    [
        (Reply(status=429, json={"error": {"message": "slow down"}}, headers={"retry-after": "30"}), "RateLimitError"),
        (Reply(status=503, json={"error": {"message": "overloaded"}}), "LLMError"),
        (Reply(status=401, json={"error": {"message": "bad key"}}), "LLMAuthenticationError"),
        (Reply(json=chat_answer("")), "LLMError"),
    ],
    ids=["429-long-retry-after", "503", "401", "empty-answer"],
)
async def test_service_failures_fall_through(manager, scripted, reply, reason):
    scripted.reset(reply, reply, reply)
    chain = [("openai", {"base_url": scripted.base_url, "api_key": "k", "max_retries": 1}), ("mock", {"replies": ["ok"]})]
    async with PepperPy(plugin_manager=manager).with_llm(chain) as pepper:
        result = await pepper.chat.with_user("hi").generate()
    assert result.content == "ok"
    assert served_by(result) == ("mock", ["openai"])
    assert result.metadata["fallback"]["failed"][0]["error"].split(":")[0].endswith(reason)
    if reason == "RateLimitError":
        assert len(scripted.requests) == 1, "a Retry-After beyond the cap is not waited for inside a chain"


async def test_auth_failures_can_be_made_to_raise(manager, scripted):
    scripted.reset(Reply(status=401, json={"error": {"message": "bad key"}}))
    chain = [("openai", {"base_url": scripted.base_url, "api_key": "k"}), "mock"]
    async with PepperPy(plugin_manager=manager).with_llm(chain, fallback_on_auth=False) as pepper:
        with pytest.raises(ProviderError, match="bad key"):
            await pepper.chat.with_user("hi").generate()


async def test_the_callers_mistakes_never_fall_through(manager, scripted):
    chain = [("openai", {"base_url": scripted.base_url, "api_key": "k"}), ("mock", {"replies": ["x"]})]
    async with PepperPy(plugin_manager=manager).with_llm(chain) as pepper:
        with pytest.raises(ConfigError, match="unknown call option 'temprature'"):
            await pepper.chat.with_user("hi").with_options(temprature=1).generate()
        scripted.reset(Reply(status=400, json={"error": {"message": "messages must alternate"}}))
        with pytest.raises(ProviderError, match="messages must alternate"):
            await pepper.chat.with_user("hi").generate()
        assert pepper.llm.members[1].provider is None, "the next member was never created"


async def test_a_stream_falls_back_before_its_first_chunk_only(manager, scripted):
    chain = [("openai", {"base_url": scripted.base_url, "api_key": "k", "max_retries": 0}), ("mock", {"replies": ["from mock"]})]
    async with PepperPy(plugin_manager=manager).with_llm(chain) as pepper:
        scripted.reset(Reply(status=503, json={"error": {"message": "down"}}))
        chunks = [c async for c in pepper.chat.with_user("hi").stream()]
        assert "".join(c.content for c in chunks) == "from mock"
        assert chunks[0].metadata["fallback"]["served_by"] == "mock"

        scripted.reset(Reply(events=chat_stream_events(["one ", "two ", "three"]), cut_after=3))
        received = []
        with pytest.raises(ProviderError, match="broke off midway"):
            async for chunk in pepper.chat.with_user("hi").stream():
                received.append(chunk.content)
        assert "".join(received) == "one two ", "after the first chunk nothing is repeated from another member"


async def test_when_every_member_fails_one_group_lists_each(manager, monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    isolated = PluginManager(search_paths=manager.search_paths(), home=tmp_path / "keyless-home")
    chain = ["openai", ("llamacpp", {"base_url": closed_port_url()})]
    async with PepperPy(plugin_manager=isolated).with_llm(chain) as pepper:
        with pytest.raises(PepperPyErrorGroup) as raised:
            await pepper.chat.with_user("hi").generate()
    assert isinstance(raised.value, PepperPyError) and len(raised.value.exceptions) == 2
    assert "every member of the llm fallback chain failed (openai, llamacpp)" in str(raised.value)


async def test_a_failed_member_is_tried_again_and_closed_meanwhile(manager, scripted):
    chain = [("openai", {"base_url": scripted.base_url, "api_key": "k", "max_retries": 0}), ("mock", {"replies": ["backup"]})]
    async with PepperPy(plugin_manager=manager).with_llm(chain) as pepper:
        scripted.reset(Reply(status=503, json={"error": {"message": "down"}}), Reply(json=chat_answer("primary")))
        assert (await pepper.chat.with_user("hi").generate()).content == "backup"
        assert not pepper.llm.members[0].provider.initialized, "what the failed member opened was closed"
        second = await pepper.chat.with_user("hi").generate()
        assert second.content == "primary" and served_by(second) == ("openai", [])


async def test_registered_fallbacks_serve_when_the_first_is_asked_for(manager, monkeypatch, tmp_path):
    from pepperpy.plugins import register_plugin_fallbacks

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    isolated = PluginManager(search_paths=manager.search_paths(), home=tmp_path / "keyless-home")
    monkeypatch.setattr(PluginManager, "_instance", isolated)
    register_plugin_fallbacks("llm", ["openai", "mock"])
    async with PepperPy().with_llm("openai") as pepper:
        result = await pepper.chat.with_user("echo me").generate()
    assert result.content == "echo me" and served_by(result) == ("mock", ["openai"])


def test_the_fallbacks_example(session_home, llama_server):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, str(root / "examples" / "fallbacks.py")], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PEPPERPY_HOME": str(session_home), "PEPPERPY_BASE_URL": llama_server}, cwd=root,
    )
    assert done.returncode == 0, done.stderr
    assert "Paris" in done.stdout and "served by llamacpp after ['openai']" in done.stdout


def test_a_chain_with_an_unknown_member_fails_at_with_llm(manager):
    from pepperpy.errors import PluginNotFoundError

    with pytest.raises(PluginNotFoundError, match="did you mean llm/openai"):
        PepperPy(plugin_manager=manager).with_llm(["opnai", "mock"])
    with pytest.raises(ConfigError, match="a fallback member is a name or a"):
        PepperPy(plugin_manager=manager).with_llm(["mock", ("local",)])


def test_options_no_member_takes_fail_at_with_llm(manager):
    with pytest.raises(ConfigError, match=r"unknown option 'replys' for llm/mock \(fallback member\); did you mean 'replies'\?"):
        PepperPy(plugin_manager=manager).with_llm([("mock", {"replys": ["x"]}), "mock"])
    with pytest.raises(ConfigError, match=r"unknown option 'tempreature' for every member of the fallback chain"):
        PepperPy(plugin_manager=manager).with_llm(["mock", "openai"], api_key="k", tempreature=0.2)
    PepperPy(plugin_manager=manager).with_llm(["mock", "openai"], api_key="k", temperature=0.2)  # openai takes it


async def test_when_every_member_fails_the_lines_name_the_member(manager):
    chain = [("openai", {"base_url": closed_port_url(), "api_key": "k"}), ("llamacpp", {"base_url": closed_port_url()})]
    async with PepperPy(plugin_manager=manager).with_llm(chain) as pepper:
        with pytest.raises(PepperPyErrorGroup) as raised:
            await pepper.chat.with_user("hi").generate()
    lines = str(raised.value).splitlines()[1:]
    assert lines[0].endswith("(fallback member 'openai')") and lines[1].endswith("(fallback member 'llamacpp')")


BUGGY = '''
from pepperpy.llm import LLMProvider


class BuggyLLM(LLMProvider):
    """A plugin with a bug: its own exception, not a PepperPy error."""

    async def generate(self, messages, **options):
        raise ValueError("boom")

    async def generate_stream(self, messages, **options):
        raise ValueError("stream boom")
        yield
'''


async def test_a_members_own_exception_is_a_plugin_error_and_the_chain_moves_on(manager, make_plugin):
    """Issue 19: a plugin's own exception is a PluginError naming it and the method; the next member serves."""
    make_plugin("buggy", files={"provider.py": BUGGY}, entry_point="provider:BuggyLLM")
    async with PepperPy(plugin_manager=manager).with_llm(["buggy", ("mock", {"replies": ["served"]})]) as pepper:
        result = await pepper.chat.with_user("hi").generate()
        chunks = [c async for c in pepper.chat.with_user("hi").stream()]
    assert result.content == "served" and served_by(result) == ("mock", ["buggy"])
    assert result.metadata["fallback"]["failed"][0]["error"] == "PluginError: llm/buggy: generate() raised ValueError: boom"
    assert "".join(c.content for c in chunks) == "served"
    failed = chunks[0].metadata["fallback"]["failed"][0]["error"]
    assert failed == "PluginError: llm/buggy: generate_stream() raised ValueError: stream boom"
