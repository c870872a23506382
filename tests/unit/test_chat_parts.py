"""The facade sends parts: with_user(text, Image(...)) in any order, conv.say(..., Image(...)), with_messages;
conversations keep the answer's reasoning; llm/mock scripts reasoning and records what it was sent."""

from __future__ import annotations

import pytest

from pepperpy import File, Image, PepperPy
from pepperpy.errors import ConfigError, InvalidInputError
from pepperpy.llm import GenerationChunk, ImagePart, Message, MessageRole, ReasoningPart, TextPart

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(32))
PDF = b"%PDF-1.4\n%%EOF\n"


@pytest.fixture
def files(tmp_path):
    (tmp_path / "cat.png").write_bytes(PNG)
    (tmp_path / "contract.pdf").write_bytes(PDF)
    return tmp_path


async def test_with_user_sends_the_text_then_the_parts_in_the_order_given(builtin_manager, files):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        result = await pepper.chat.with_user("What is in this picture?", Image(files / "cat.png")).generate()
        (asked,) = pepper.llm.calls[0]
        assert [type(p) for p in asked.content] == [TextPart, ImagePart]
        assert asked.content[1].read() == PNG
        assert result.content == "What is in this picture?"  # the mock echoes the text

        await pepper.chat.with_user(File(files / "contract.pdf"), "Summarize").generate()
        (asked,) = pepper.llm.calls[1]
        assert [p.type for p in asked.content] == ["document", "text"] and asked.text == "Summarize"


async def test_plain_text_stays_a_str(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        await pepper.chat.with_user("Hi").generate()
        assert pepper.llm.calls[0][0].content == "Hi"


async def test_with_messages_takes_the_same_parts(builtin_manager, files):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        messages = [{"role": "user", "content": ["Describe", Image(files / "cat.png")]}]
        await pepper.chat.with_messages(messages).generate()
        assert pepper.llm.calls[0][0].content[1].media_type == "image/png"


def test_a_path_or_a_number_beside_the_text_says_how_to_pass_a_part(builtin_manager, files):
    chat = PepperPy(plugin_manager=builtin_manager).with_llm("mock").chat
    with pytest.raises(InvalidInputError, match=r"wrap it: Image\(path\)"):
        chat.with_user("What is this?", files / "cat.png")
    with pytest.raises(InvalidInputError, match="takes the message text as a str, got int"):
        chat.with_user("What is this?", 3)


async def test_a_conversation_keeps_images_and_the_answers_reasoning(builtin_manager, files):
    replies = [{"reasoning": "Whiskers, so a cat.", "content": "A cat."}, "Grey."]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=replies) as pepper:
        conv = pepper.conversation()
        first = await conv.say("What is in this picture?", Image(files / "cat.png"))
        assert (first.content, first.reasoning) == ("A cat.", "Whiskers, so a cat.")
        await conv.say("What colour?")
        sent = pepper.llm.calls[1]
    assert [m.role for m in sent] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.USER]
    assert sent[0].content[1].read() == PNG
    assert sent[1].reasoning == "Whiskers, so a cat." and sent[1].text == "A cat."
    assert conv.messages[-1].content == "Grey."


async def test_a_streamed_conversation_keeps_the_reasoning_too(builtin_manager):
    replies = [{"reasoning": "Two and two.", "content": "Four."}]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=replies) as pepper:
        conv = pepper.conversation()
        chunks = [chunk async for chunk in conv.stream("2+2?")]
    assert "".join(c.reasoning for c in chunks) == "Two and two." and "".join(c.content for c in chunks) == "Four."
    reply = conv.messages[-1]
    assert reply.role == MessageRole.ASSISTANT and reply.reasoning == "Two and two." and reply.text == "Four."
    assert isinstance(reply.content[0], ReasoningPart)


def _signed_stream(said: str):
    """A hook answering with a stream whose last chunk carries the provider's message: a signed thinking part."""
    signed = Message(role=MessageRole.ASSISTANT, content=[ReasoningPart(text="Hmm.", signature="sig-1"), TextPart(text="Four.")])

    async def hook(call, call_next):
        async def chunks():
            yield GenerationChunk(reasoning="Hmm.")
            yield GenerationChunk(content=said)
            yield GenerationChunk(finish_reason="stop", message=signed)
        return chunks()

    return hook, signed


async def test_a_streamed_conversation_keeps_the_providers_message_with_its_signatures(builtin_manager):
    hook, signed = _signed_stream("Four.")
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock").with_hook(hook) as pepper:
        conv = pepper.conversation()
        [chunk async for chunk in conv.stream("2+2?")]
    assert conv.messages[-1] == signed and conv.messages[-1].content[0].signature == "sig-1"


async def test_a_streamed_message_unlike_the_chunks_received_is_not_kept(builtin_manager):
    """A hook changed the text on its way: the history keeps what the caller got, not the provider's message."""
    hook, _ = _signed_stream("FOUR.")
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock").with_hook(hook) as pepper:
        conv = pepper.conversation()
        [chunk async for chunk in conv.stream("2+2?")]
    assert conv.messages[-1].content == [ReasoningPart(text="Hmm."), TextPart(text="FOUR.")]


async def test_with_system_cache_marks_a_cache_point(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        await pepper.chat.with_system("A long manual ...", cache=True).with_user("Hi").generate()
        system = pepper.llm.calls[0][0]
    assert system.content == [TextPart(text="A long manual ...", cache=True)] and system.text == "A long manual ..."


async def test_the_mock_records_the_reasoning_option(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        await pepper.chat.with_user("Hi").with_options(reasoning="high").generate()
        assert pepper.llm.options[0]["reasoning"] == "high"


def test_a_malformed_scripted_reasoning_fails_at_with_llm(builtin_manager):
    with pytest.raises(ConfigError, match="is not an answer with reasoning"):
        PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[{"reasoning": 3}]).llm
