"""A key given empty is no key, and a key with a space or line break around it is refused before anything is
sent: with a clear error that names the option and never shows the key. A header the HTTP library refuses
(a plugin's own) is reported as not sent, not as a request the service may have billed."""

from __future__ import annotations

import socket
import traceback

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, MissingKeyError, ProviderError

KEYED = """
from pydantic import Field, SecretStr

from pepperpy.llm import GenerationResult, LLMProvider


class Keyed(LLMProvider):
    api_key: SecretStr = Field(description="the service's key")

    async def generate(self, messages, **options):
        return GenerationResult(content=self.api_key.get_secret_value())
"""

KEY = "sk-not-a-real-key-1234"


@pytest.fixture
def keyed(make_plugin, manager, monkeypatch):
    monkeypatch.delenv("KEYED_API_KEY", raising=False)
    make_plugin("keyed", files={"provider.py": KEYED}, entry_point="provider:Keyed", env={"api_key": "KEYED_API_KEY"})
    return manager


def test_a_key_given_empty_is_missing_and_says_where_to_set_it(keyed):
    with pytest.raises(MissingKeyError, match=r"llm/keyed needs 'api_key'.*KEYED_API_KEY"):
        keyed.create_provider("llm", "keyed", api_key="")


async def test_a_key_given_empty_is_looked_for_in_the_environment(keyed, monkeypatch):
    monkeypatch.setenv("KEYED_API_KEY", KEY)
    async with keyed.create_provider("llm", "keyed", api_key="") as provider:
        assert (await provider.generate("hi")).content == KEY


@pytest.mark.parametrize("given", [KEY + "\n", " " + KEY, KEY + "\r\n"])
def test_a_key_with_a_space_or_line_break_around_it_is_refused_without_showing_it(keyed, given):
    with pytest.raises(ConfigError, match=r"option 'api_key' for llm/keyed starts or ends with a space or a line break") as raised:
        keyed.create_provider("llm", "keyed", api_key=given)
    assert KEY not in str(raised.value) and "KEYED_API_KEY" in str(raised.value)


def test_a_key_from_the_environment_with_a_newline_is_refused_too(keyed, monkeypatch):
    monkeypatch.setenv("KEYED_API_KEY", KEY + "\n")
    with pytest.raises(ConfigError, match="strip") as raised:
        keyed.create_provider("llm", "keyed")
    assert KEY not in str(raised.value)


BAD_HEADER = '''
from pepperpy.llm import GenerationResult
from pepperpy.plugins import LLMProvider, RemoteProvider


class BadHeader(RemoteProvider, LLMProvider):
    def headers(self):
        return {"X-Signature": "sig-not-real-5678\\n"}

    async def generate(self, messages, **options):
        return GenerationResult(content=str(await self.endpoint.post("/generate", {"prompt": "hi"})))
'''


@pytest.fixture
def silent_server():
    """A real listening socket that never accepts: a connection completes in its backlog, and nothing answers."""
    server = socket.create_server(("127.0.0.1", 0), backlog=8)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


async def test_a_header_the_http_library_refuses_is_not_sent_nor_shown(make_plugin, manager, silent_server):
    base_url = silent_server
    make_plugin("badheader", files={"provider.py": BAD_HEADER}, entry_point="provider:BadHeader")
    async with PepperPy(plugin_manager=manager).with_llm("badheader", base_url=base_url, api_key=KEY) as pepper:
        with pytest.raises(ProviderError, match="was not sent: the HTTP library refused a header") as raised:
            await pepper.chat.with_user("hi").generate()
    shown = "".join(traceback.format_exception(raised.value))
    assert "sig-not-real-5678" not in shown
    assert "may have processed" not in str(raised.value) and not raised.value.retryable
