"""llm/gemini's checks before any request: the key (GEMINI_API_KEY or GOOGLE_API_KEY), media it cannot take,
reasoning on a model that does not think. A base_url nothing listens on shows no request was needed."""

from __future__ import annotations

import pytest

from pepperpy.errors import InvalidInputError, MissingKeyError
from pepperpy.llm import Message
from pepperpy.parts import File, Image

GIF = b"GIF89a\x01\x00\x01\x00\x80\x00\x00\xff\xff\xff\x00\x00\x00,\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
NOWHERE = "http://127.0.0.1:9/v1beta"  # the discard port: a request would fail with a connection error instead


@pytest.fixture
def no_keys(monkeypatch):
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)


@pytest.mark.parametrize("category", ["llm", "embeddings"])
def test_a_missing_key_names_both_variables(builtin_manager, no_keys, category):
    with pytest.raises(MissingKeyError) as caught:
        builtin_manager.create_provider(category, "gemini")
    message = str(caught.value)
    assert f"{category}/gemini needs 'api_key'" in message
    assert "GEMINI_API_KEY" in message and "GOOGLE_API_KEY" in message and "pepperpy keys set" in message


@pytest.mark.parametrize("category", ["llm", "embeddings"])
def test_google_api_key_is_the_fallback(builtin_manager, no_keys, monkeypatch, category):
    monkeypatch.setenv("GOOGLE_API_KEY", "google-key-not-real")
    provider = builtin_manager.create_provider(category, "gemini")
    assert provider.api_key.get_secret_value() == "google-key-not-real"
    monkeypatch.setenv("GEMINI_API_KEY", "gemini-key-not-real")
    assert builtin_manager.create_provider(category, "gemini").api_key.get_secret_value() == "gemini-key-not-real"


def test_google_api_key_saved_in_keys_json_is_the_fallback_too(builtin_manager, no_keys):
    from pepperpy._config import save_key

    save_key(builtin_manager.home, "GOOGLE_API_KEY", "saved-google-key-not-real")
    assert builtin_manager.create_provider("llm", "gemini").api_key.get_secret_value() == "saved-google-key-not-real"


def test_the_key_is_never_in_the_repr(builtin_manager, no_keys):
    provider = builtin_manager.create_provider("llm", "gemini", api_key="secret-gemini-key-not-real")
    assert "secret-gemini-key-not-real" not in repr(provider)


def test_base_url_without_version_gets_v1beta(builtin_manager):
    assert builtin_manager.create_provider("llm", "gemini", api_key="k", base_url="http://h:1").base_url == "http://h:1/v1beta"
    assert builtin_manager.create_provider("llm", "gemini", api_key="k", base_url="http://h:1/v1").base_url == "http://h:1/v1"


async def test_an_image_type_gemini_cannot_take_fails_before_any_request(builtin_manager):
    provider = builtin_manager.create_provider("llm", "gemini", api_key="k", base_url=NOWHERE)
    await provider.initialize()
    try:
        message = {"role": "user", "content": ["What is this?", Image(GIF)]}
        with pytest.raises(InvalidInputError, match=r"llm/gemini \(model gemini-2.5-flash\) cannot take the image .*image/gif.*image/png"):
            await provider.generate([message])
    finally:
        await provider.cleanup()


async def test_reasoning_on_a_model_that_does_not_think_fails_before_any_request(builtin_manager):
    provider = builtin_manager.create_provider("llm", "gemini", api_key="k", base_url=NOWHERE, model="gemini-2.0-flash")
    await provider.initialize()
    try:
        with pytest.raises(InvalidInputError, match=r"gemini-2.0-flash\) does not reason"):
            await provider.generate("Hi", reasoning="high")
    finally:
        await provider.cleanup()


def test_reasoning_false_on_a_model_that_does_not_think_sends_no_thinking_config(builtin_manager):
    """Turning thinking off on a model without it is no request for it (budget 0 is for thinking models)."""
    provider = builtin_manager.create_provider("llm", "gemini", api_key="k", base_url=NOWHERE, model="gemini-2.0-flash")
    _, off = provider._body([Message(role="user", content="Hi")], {"reasoning": False})
    _, thinking_off = provider._body([Message(role="user", content="Hi")], {"reasoning": False, "model": "gemini-2.5-flash"})
    assert "thinkingConfig" not in off.get("generationConfig", {})
    assert thinking_off["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 0}


async def test_a_url_gemini_does_not_fetch_is_refused(builtin_manager):
    provider = builtin_manager.create_provider("llm", "gemini", api_key="k", base_url=NOWHERE)
    await provider.initialize()
    try:
        message = {"role": "user", "content": ["Summarize", File("s3://bucket/contract.pdf")]}
        with pytest.raises(InvalidInputError, match=r"only https:// and gs:// URLs"):
            await provider.generate([message])
    finally:
        await provider.cleanup()


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-2.5-flash"])
def test_images_of_tool_results_reach_gemini(builtin_manager, model):
    """Gemini 3 takes a tool result's media inside its functionResponse (``parts``); earlier models get them after
    the round's function responses, in the same user turn. The function responses stay first, in the calls' order."""
    import base64
    import sys

    from pepperpy import Image
    from pepperpy.llm import Message, TextPart, ToolCall

    wire = sys.modules[builtin_manager.load_class("llm", "gemini").__module__.rsplit(".", 1)[0] + ".wire"]
    png = b"\x89PNG\r\n\x1a\n" + bytes(8)
    calls = [ToolCall(id="c1", name="chart", arguments={}), ToolCall(id="c2", name="note", arguments={})]
    messages = [
        Message(role="user", content="Plot it"),
        Message(role="assistant", content="", tool_calls=calls),
        Message(role="tool", tool_call_id="c1", name="chart", content=[TextPart(text="a dot"), Image(png, "image/png")]),
        Message(role="tool", tool_call_id="c2", name="note", content="noted"),
    ]
    turn = wire.request_body("llm/gemini", {"model": model}, messages, {})["contents"][-1]
    inline = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(png).decode()}}
    chart = {"name": "chart", "response": {"output": "a dot"}, "id": "c1"}
    note = {"functionResponse": {"name": "note", "response": {"output": "noted"}, "id": "c2"}}
    if model.startswith("gemini-3"):
        assert turn == {"role": "user", "parts": [{"functionResponse": {**chart, "parts": [inline]}}, note]}
    else:
        assert turn == {"role": "user", "parts": [{"functionResponse": chart}, note, inline]}
