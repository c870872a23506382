"""Every built-in LLM takes what people pass (a str, role/content dicts, Messages) when called directly, as the
plugin-system document does; and errors carry their category (an LLM's are LLMErrors, embeddings' are not).

llm/openai and embeddings/openai run against tests/servers/scripted.py for the error cases (a real server
cannot answer 401 on demand) and against llama.cpp's real server for the inputs; llm/anthropic's service
cannot run here, so the scripted server speaks its documented Messages API.
"""

from __future__ import annotations

import pytest

from pepperpy.errors import AuthenticationError, LLMAuthenticationError, LLMError, ProviderError, RateLimitError
from pepperpy.llm import Message
from pepperpy.plugins import auto_context
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration

INPUTS = {
    "str": "Say hi.",
    "dicts": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Say hi."}],
    "messages": [Message(role="user", content="Say hi.")],
}


@pytest.mark.parametrize("shape", INPUTS)
async def test_llm_local_takes_every_message_shape(local_manager, shape):
    llm = local_manager.create_provider("llm", "local", temperature=0, max_tokens=4, seed=1)
    async with auto_context(llm):
        result = await llm.generate(INPUTS[shape])
        streamed = "".join([chunk.content async for chunk in llm.generate_stream(INPUTS[shape])])
    assert result.content and streamed == result.content
    assert result.messages[-2].content == "Say hi."


@pytest.mark.parametrize("shape", INPUTS)
async def test_llm_openai_takes_every_message_shape(remote_manager, llama_server, shape):
    llm = remote_manager.create_provider("llm", "llamacpp", base_url=llama_server, temperature=0, max_tokens=4)
    async with llm:
        result = await llm.generate(INPUTS[shape])
    assert result.content
    assert result.messages[-2].content == "Say hi."


@pytest.mark.parametrize("shape", INPUTS)
async def test_llm_anthropic_and_mock_take_every_message_shape(remote_manager, scripted, shape):
    answer = {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn", "usage": {"input_tokens": 3, "output_tokens": 1},
    }
    scripted.reset(Reply(json=answer))
    async with remote_manager.create_provider("llm", "anthropic", base_url=scripted.base_url, api_key="k", model="m") as llm:
        assert (await llm.generate(INPUTS[shape])).content == "hi"
    assert scripted.requests[0].json()["messages"][-1] == {"role": "user", "content": "Say hi."}
    async with remote_manager.create_provider("llm", "mock") as mock:
        assert (await mock.generate(INPUTS[shape])).content == "Say hi."


async def test_an_llms_http_errors_are_llm_errors(remote_manager, scripted):
    scripted.reset(Reply(status=401, json={"error": {"message": "bad key"}}), Reply(status=429, json={"error": {"message": "slow"}}))
    async with remote_manager.create_provider("llm", "openai", base_url=scripted.base_url, api_key="k", max_retries=0) as llm:
        with pytest.raises(LLMError) as auth:
            await llm.generate("hi")
        with pytest.raises(LLMError) as limited:
            await llm.generate("hi")
    assert isinstance(auth.value, AuthenticationError) and isinstance(auth.value, LLMAuthenticationError)
    assert isinstance(limited.value, RateLimitError)


async def test_an_embeddings_failure_is_not_an_llm_error(remote_manager, scripted):
    scripted.reset(Reply(status=401, json={"error": {"message": "bad key"}}), Reply(status=500, json={"error": {"message": "down"}}))
    async with remote_manager.create_provider("embeddings", "openai", base_url=scripted.base_url, api_key="k", max_retries=0) as embeddings:
        with pytest.raises(AuthenticationError) as auth:
            await embeddings.embed(["x"])
        with pytest.raises(ProviderError) as failed:
            await embeddings.embed(["x"])
    assert not isinstance(auth.value, LLMError) and not isinstance(failed.value, LLMError)
