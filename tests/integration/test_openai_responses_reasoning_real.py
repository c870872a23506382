"""Reasoning over llama.cpp's real /v1/responses: started with the Qwen3-style template
(tests/servers/qwen3_style.jinja) and a grammar that makes SmolLM2 write a short reasoning, </think>, then a
short answer, llama.cpp returns ``reasoning`` output items (``reasoning_text`` content) and streams
``response.reasoning_text.delta`` events; llm/openai with api="responses" gives them as ``result.reasoning``
and ``chunk.reasoning``. (OpenAI's own summaries and encrypted content are tested against recordings.)"""

from __future__ import annotations


import pytest

from pepperpy import PepperPy
from pepperpy.llm import ReasoningPart
from tests.openai_types import check_responses_body, record_bodies

pytestmark = pytest.mark.integration
SETTINGS = {"temperature": 0, "max_tokens": 60}


@pytest.fixture
async def pepper(remote_manager, thinking_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "llamacpp", base_url=thinking_server, api="responses", **SETTINGS
    ) as ready:
        yield ready


def _clean(text: str) -> bool:
    return "<think>" not in text and "</think>" not in text


async def test_generate_gives_the_reasoning_item_apart_from_the_answer(pepper):
    result = await pepper.chat.with_user("What is 2+2?").generate()
    assert result.reasoning.strip() and result.content.strip()
    assert _clean(result.reasoning) and _clean(result.content)
    (thought,) = [p for p in result.messages[-1].parts if isinstance(p, ReasoningPart)]
    assert thought.text == result.reasoning and thought.id.startswith("rs_")


async def test_stream_gives_reasoning_deltas_then_text_deltas(pepper):
    whole = await pepper.chat.with_user("What is 2+2?").generate()
    chunks = [chunk async for chunk in pepper.chat.with_user("What is 2+2?").stream()]
    assert "".join(c.reasoning for c in chunks) == whole.reasoning
    assert "".join(c.content for c in chunks) == whole.content
    thinking = [i for i, c in enumerate(chunks) if c.reasoning]
    answering = [i for i, c in enumerate(chunks) if c.content]
    assert thinking and answering and max(thinking) < min(answering)


async def test_reasoning_option_and_a_second_turn(pepper, monkeypatch):
    bodies = record_bodies(monkeypatch)
    conv = pepper.conversation()
    first = await conv.say("What is 2+2?", reasoning="low")
    second = await conv.say("And 3+3?", reasoning="low")
    assert first.reasoning and second.content.strip()
    for body in bodies:
        check_responses_body(body)
        assert body["reasoning"] == {"effort": "low", "summary": "auto"} and body["include"] == ["reasoning.encrypted_content"]
    # llama.cpp gives no encrypted content, and nothing is stored (store=false): its reasoning is not sent back
    assert [item.get("type") for item in bodies[-1]["input"]] == [None, "message", None]
