"""The issue's error cases on every hosted provider through the facade: a part the provider cannot take, and a
document larger than the service takes, fail before any request (the providers point at the discard port, where a
request would end in a connection error instead), naming the provider, the model, the part and what it takes."""

from __future__ import annotations

import pytest

from pepperpy import Audio, File, PepperPy
from pepperpy.errors import InvalidInputError, UnsupportedPartError

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
