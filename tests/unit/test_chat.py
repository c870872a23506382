"""The chat builder and conversations: a request needs something to answer, ``messages`` is public,
a stream with a response model ends with the parsed answer, and a conversation left early keeps its turn."""

from __future__ import annotations

import asyncio
from contextlib import aclosing

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.llm import Message, MessageRole


class City(BaseModel):
    name: str
    population: int


CITY_JSON = '{"name": "Paris", "population": 2100000}'


# -- a request with nothing to answer --------------------------------------------------------

async def test_a_chat_with_no_message_is_an_input_error_and_reaches_nobody(builtin_manager):
    called = []

    async def spy(call, call_next):
        called.append(call)
        return await call_next(call)

    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock").with_hook(spy)
    no_prompt = r"chat: nothing to answer \(no messages\); add a user message with \.with_user\(\.\.\.\)"
    with pytest.raises(InvalidInputError, match=no_prompt):
        await pepper.chat.generate()
    with pytest.raises(InvalidInputError, match=no_prompt):
        [chunk async for chunk in pepper.chat.stream()]
    with pytest.raises(InvalidInputError, match=r"chat: nothing to answer \(only assistant messages, no user or system message\)"):
        await pepper.chat.with_assistant("I said this before.").generate()
    assert called == [] and not pepper.llm.initialized, "no hook, cache or provider sees an empty request"
    await pepper.aclose()


def test_generate_sync_with_no_message_is_an_input_error(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["made up"])
    with pytest.raises(InvalidInputError, match="nothing to answer"):
        pepper.chat.generate_sync()
    pepper.close()


@pytest.mark.parametrize("name, config", [
    ("mock", {"replies": ["made up"]}),
    ("mock", {}),
    ("openai", {"api_key": "sk-test-not-used"}),
    ("anthropic", {"api_key": "sk-ant-test-not-used"}),
])
@pytest.mark.parametrize("messages", [[], [{"role": "assistant", "content": "hello"}]], ids=["empty", "assistant-only"])
async def test_every_llm_refuses_a_request_with_nothing_to_answer(builtin_manager, name, config, messages):
    """Called directly (no builder in between), each provider refuses before it sends or invents anything."""
    provider = builtin_manager.create_provider("llm", name, **config)
    with pytest.raises(InvalidInputError, match=rf"llm/{name}: generate\(\): nothing to answer"):
        await provider.generate(messages)
    with pytest.raises(InvalidInputError, match=rf"llm/{name}: generate_stream\(\): nothing to answer"):
        [chunk async for chunk in provider.generate_stream(messages)]


async def test_a_system_message_alone_is_answered_and_mock_echoes_it(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        assert (await pepper.chat.with_system("Say hello.").generate()).content == "Say hello."


# -- the public messages of a builder ---------------------------------------------------------

def test_a_builder_shows_its_messages_as_a_copy(builtin_manager):
    chat = PepperPy(plugin_manager=builtin_manager).with_llm("mock").chat.with_system("Be brief.").with_user("Hi")
    assert [(m.role, m.content) for m in chat.messages] == [(MessageRole.SYSTEM, "Be brief."), (MessageRole.USER, "Hi")]
    chat.messages.append(Message(role=MessageRole.USER, content="sneaked in"))
    assert len(chat.messages) == 2, "changing the list it returns does not change the builder"
    assert chat.messages == chat._messages  # the private name stays for the migration plan's test


# -- structured output on a stream ------------------------------------------------------------

async def test_a_stream_with_a_response_model_ends_with_the_parsed_answer(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[CITY_JSON]) as pepper:
        chunks = [c async for c in pepper.chat.with_user("Paris?").with_response_model(City).stream()]
    assert "".join(c.content for c in chunks) == CITY_JSON
    assert chunks[-1].parsed == City(name="Paris", population=2100000)
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None, "the provider's last chunk, not an extra one"
    assert all(c.parsed is None for c in chunks[:-1])


async def test_a_streamed_answer_that_does_not_fit_raises_after_every_chunk(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=['{"name": "Paris"}']) as pepper:
        received = []
        with pytest.raises(LLMError, match=r"(?s)llm/mock: the streamed answer did not fit City: .*population.*use generate\(\)"):
            async for chunk in pepper.chat.with_user("Paris?").with_response_model(City).stream():
                received.append(chunk)
        assert "".join(c.content for c in received) == '{"name": "Paris"}'
        assert len(pepper.llm.calls) == 1, "a stream is not retried"


# -- a conversation's stream left early ---------------------------------------------------------

async def test_a_conversation_keeps_the_users_turn_and_the_part_received_when_a_stream_is_left(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["one two three", "four"]) as pepper:
        conv = pepper.conversation(system="Be brief.")
        async with aclosing(conv.stream("Count.")) as stream:
            async for chunk in stream:
                break
        assert [(m.role.value, m.content) for m in conv.messages] == [
            ("system", "Be brief."), ("user", "Count."), ("assistant", "one "),
        ]
        await conv.say("Go on.")
        assert [(m.role.value, m.content) for m in pepper.llm.calls[-1]] == [
            ("system", "Be brief."), ("user", "Count."), ("assistant", "one "), ("user", "Go on."),
        ]


async def test_a_plain_break_keeps_the_users_turn_at_once(builtin_manager):
    """Without aclosing(), asyncio closes the abandoned stream a little later; the user's turn is there before."""
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["one two three", "four"]) as pepper:
        conv = pepper.conversation()
        async for chunk in conv.stream("Count."):
            break
        assert [(m.role.value, m.content) for m in conv.messages] == [("user", "Count.")]
        await conv.say("Go on.")
        assert [(m.role.value, m.content) for m in conv.messages][-2:] == [("user", "Go on."), ("assistant", "four")]
        assert ("user", "Count.") in [(m.role.value, m.content) for m in pepper.llm.calls[-1]]


async def test_a_cancelled_conversation_stream_keeps_the_users_turn(builtin_manager):
    started = asyncio.Event()

    async def stalled(call, call_next):
        async def chunks():
            started.set()
            await asyncio.Event().wait()  # no answer ever comes
            yield  # pragma: no cover

        return chunks()

    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock").with_hook(stalled)
    conv = pepper.conversation()

    async def read() -> None:
        async for _ in conv.stream("Hello?"):
            pass

    task = asyncio.create_task(read())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert [(m.role.value, m.content) for m in conv.messages] == [("user", "Hello?")]
    await pepper.aclose()


async def test_a_conversation_stream_that_fails_leaves_the_history_as_it_was(builtin_manager):
    async def failing(call, call_next):
        raise LLMError("llm/mock: the service is down")

    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock").with_hook(failing)
    conv = pepper.conversation(system="s")
    with pytest.raises(LLMError, match="down"):
        async for _ in conv.stream("Hello?"):
            pass
    assert [m.content for m in conv.messages] == ["s"], "as say() does: the same message can be sent again"
    await pepper.aclose()


# -- structured output cut at the token limit -----------------------------------------------------

CUT_SHORT = '''
from pepperpy.llm import GenerationResult, LLMProvider


class CutShort(LLMProvider):
    """Answers like a small local model out of tokens: JSON cut midway, finish_reason "length"."""

    max_tokens: int = 256

    async def generate(self, messages, **options):
        self.calls = getattr(self, "calls", 0) + 1
        return GenerationResult(content='{"name": "Par', metadata={"finish_reason": "length"})
'''


async def test_a_structured_answer_cut_at_the_token_limit_says_so_and_is_not_retried(manager, make_plugin):
    make_plugin("cut", files={"provider.py": CUT_SHORT}, entry_point="provider:CutShort")
    async with PepperPy(plugin_manager=manager).with_llm("cut") as pepper:
        with pytest.raises(LLMError, match=r"llm/cut: the answer was cut at the token limit \(max_tokens=256\) before its "
                                           r"JSON for City was complete; pass a larger max_tokens"):
            await pepper.chat.with_user("Paris?").with_response_model(City).generate()
        assert pepper.llm.calls == 1, "a retry would be cut at the same limit"
        with pytest.raises(LLMError, match=r"\(max_tokens=40\)"):
            await pepper.chat.with_user("Paris?").with_options(max_tokens=40).with_response_model(City).generate()
