"""The issue's error cases on every hosted provider through the facade: a part the provider cannot take, a
document larger than the service takes, and a reasoning option for a model that cannot reason fail before any request (the providers point at the discard port, where a
request would end in a connection error instead), naming the provider, the model, the part and what it takes."""

from __future__ import annotations

import re

import pytest

from pepperpy import Audio, File, PepperPy
from pepperpy.errors import InvalidInputError, UnsupportedPartError
from pepperpy.llm import Message

NOWHERE = "http://127.0.0.1:9"  # the discard port
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "
PDF = b"%PDF-1.4\n"
HOSTED = {  # provider -> (options, a part it cannot take, words of what it takes)
    "openai": ({"model": "gpt-4o-mini", "api_key": "xxx-test-secret-not-real", "base_url": NOWHERE},
               File(b"\x00\x00\x00\x18ftypmp42", media_type="video/mp4"), "application/pdf"),
    "azure": ({"model": "gpt-4o-mini", "api_key": "xxx-test-secret-not-real", "azure_endpoint": NOWHERE},
              File(b"\x00\x00\x00\x18ftypmp42", media_type="video/mp4"), "image/png"),
    "anthropic": ({"model": "claude-sonnet-4-5", "api_key": "xxx-test-secret-not-real", "base_url": NOWHERE},
                  Audio(WAV), "application/pdf"),
    "gemini": ({"model": "gemini-2.5-flash", "api_key": "xxx-test-secret-not-real", "base_url": NOWHERE + "/v1beta"},
               File(b"PK\x03\x04", media_type="application/zip"), "application/pdf"),
    "bedrock": ({"model": "us.anthropic.claude-sonnet-4-20250514-v1:0", "api_key": "xxx-test-secret-not-real",
                 "region": "us-east-1", "base_url": NOWHERE}, Audio(WAV), "image/png"),
}


@pytest.mark.parametrize("provider", sorted(HOSTED))
async def test_a_part_the_provider_cannot_take_fails_before_any_request(builtin_manager, monkeypatch, provider):
    for name in ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "AZURE_OPENAI_AD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    options, part, takes = HOSTED[provider]
    async with PepperPy(plugin_manager=builtin_manager).with_llm(provider, max_retries=0, **options) as pepper:
        with pytest.raises(UnsupportedPartError) as caught:
            await pepper.chat.with_user("What is this?", part).generate()
    message = str(caught.value)
    assert "llm/" in message and options["model"] in message and part.media_type in message and takes in message
    assert caught.value.part is part


@pytest.mark.parametrize("provider, limit", [("anthropic", "32 MB per document"), ("bedrock", "4.5 MB per document")])
async def test_a_document_larger_than_the_service_takes_fails_before_any_request(builtin_manager, provider, limit):
    options, _, _ = HOSTED[provider]
    big = File(PDF + bytes(32 * 1024 * 1024), name="contract")
    async with PepperPy(plugin_manager=builtin_manager).with_llm(provider, max_retries=0, **options) as pepper:
        with pytest.raises(InvalidInputError, match=rf"{provider}.*{limit}"):
            await pepper.chat.with_user(big, "Summarize it.").generate()


# The services' own hosts (nothing is sent: the check comes first; were it missing, the request would fail offline).
HOSTS = {"openai": {"base_url": "https://api.openai.com/v1"}, "anthropic": {"base_url": "https://api.anthropic.com"},
         "azure": {"azure_endpoint": "https://my-resource.openai.azure.com"}}


@pytest.mark.parametrize("provider, model, extra", [
    ("openai", "gpt-4o-mini", {}),
    ("openai", "gpt-4.1-nano", {"api": "responses"}),
    ("azure", "gpt-4o-mini", {}),
    ("anthropic", "claude-3-5-haiku-latest", {}),
    ("gemini", "gemini-2.0-flash", {}),
    ("bedrock", "meta.llama3-1-8b-instruct-v1:0", {}),
])
async def test_a_reasoning_option_on_a_model_that_cannot_reason_fails_before_any_request(
    builtin_manager, monkeypatch, provider, model, extra
):
    for name in ("AZURE_OPENAI_ENDPOINT", "OPENAI_API_VERSION", "AZURE_OPENAI_AD_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    options = {**HOSTED[provider][0], "model": model, **HOSTS.get(provider, {}), **extra}
    async with PepperPy(plugin_manager=builtin_manager).with_llm(provider, max_retries=0, **options) as pepper:
        with pytest.raises(InvalidInputError) as caught:
            await pepper.chat.with_user("Hi").with_options(reasoning="high").generate()
        with pytest.raises(InvalidInputError):
            [chunk async for chunk in pepper.chat.with_user("Hi").with_options(reasoning="low").stream()]
    message = str(caught.value)
    plugin = "llm/openai" if provider == "azure" else f"llm/{provider}"  # azure is a preset of llm/openai
    assert message.startswith(plugin) and model in message and re.search("does not (reason|think)|is mapped for", message)


def sent_for(manager, provider: str, model: str, **config) -> dict:
    """The request body ``provider`` builds for ``model`` with reasoning=False."""
    llm = manager.create_provider("llm", provider, **{**HOSTED[provider][0], "model": model, **HOSTS[provider], **config})
    hello = [Message(role="user", content="Hi")]
    if provider == "openai":
        return llm._body(provider, hello, {"reasoning": False}, stream=False)
    return llm._body(hello, {"reasoning": False}, stream=False)


@pytest.mark.parametrize("provider, plain, thinking, off", [
    ("openai", "gpt-4o-mini", "gpt-5-mini", {"reasoning_effort": "none"}),
    ("anthropic", "claude-3-5-haiku-latest", "claude-sonnet-4-5", {"thinking": {"type": "disabled"}}),
])
def test_reasoning_off_is_left_out_for_a_model_that_cannot_reason(builtin_manager, provider, plain, thinking, off):
    """reasoning=False (say, a default for every call) is no error: the field those models refuse is left out."""
    (field,) = off
    assert field not in sent_for(builtin_manager, provider, plain)
    assert sent_for(builtin_manager, provider, thinking)[field] == off[field]


@pytest.mark.parametrize("provider, model", [("openai", "gpt-4o-mini"), ("anthropic", "claude-3-5-haiku-latest")])
def test_a_local_server_decides_what_its_model_names_can_do(builtin_manager, provider, model):
    """A llama.cpp or vLLM server may serve a reasoning model under any name: the option goes through unchecked."""
    llm = builtin_manager.create_provider("llm", provider, **{**HOSTED[provider][0], "model": model})
    hello = [Message(role="user", content="Hi")]
    body = llm._body(provider, hello, {"reasoning": "low"}, stream=False) if provider == "openai" \
        else llm._body(hello, {"reasoning": "low"}, stream=False)
    assert body.get("reasoning_effort") == "low" or body.get("thinking", {}).get("budget_tokens") == 1024
