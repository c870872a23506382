"""Hooks around LLM calls: order, changing the call, answering without the provider, streams, errors, usage, tracing."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError, PepperPyErrorGroup, PluginError
from pepperpy.hooks import Call
from pepperpy.llm import GenerationChunk, GenerationResult, Usage
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir


@pytest.fixture
def mock_manager(tmp_path):
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")


def facade(manager: PluginManager, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=manager).with_llm("mock", **config)


async def test_hooks_run_in_registration_order_outermost_first(mock_manager):
    events: list[str] = []

    def recorder(label: str):
        async def hook(call: Call, call_next):
            events.append(f"{label} in")
            result = await call_next(call)
            events.append(f"{label} out")
            return result

        hook.__qualname__ = label
        return hook

    mock_manager.hooks.append(recorder("process"))
    pepper = facade(mock_manager).with_hook(recorder("first")).with_hook(recorder("second"))
    result = await pepper.chat.with_user("hello").generate()
    assert result.content == "hello"
    assert events == ["process in", "first in", "second in", "second out", "first out", "process out"]
    await pepper.aclose()


async def test_a_hook_changes_the_request_with_a_copy_and_the_result(mock_manager):
    seen: list[Call] = []

    async def rewrite(call: Call, call_next):
        seen.append(call)
        changed = call.replace(messages=[*call.messages[:-1], call.messages[-1].model_copy(update={"content": "rewritten"})])
        result = await call_next(changed)
        return result.model_copy(update={"content": result.content.upper()})

    async with facade(mock_manager).with_hook(rewrite) as pepper:
        result = await pepper.chat.with_system("be brief").with_user("original").with_options(temperature=0.5).generate()
        assert result.content == "REWRITTEN"
        assert pepper.llm.calls[-1][-1].content == "rewritten"
    call = seen[0]
    assert call.provider == "llm/mock" and call.stream is False
    assert [m.content for m in call.messages] == ["be brief", "original"]  # the caller's call is unchanged
    assert dict(call.options) == {"temperature": 0.5}
    with pytest.raises(dataclasses.FrozenInstanceError):
        call.stream = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        call.options["temperature"] = 1  # type: ignore[index]


async def test_a_hook_that_answers_itself_opens_no_provider(mock_manager):
    async def canned(call: Call, call_next):
        return GenerationResult(content="from the hook")

    pepper = facade(mock_manager).with_hook(canned)
    result = await pepper.chat.with_user("hi").generate()
    assert result.content == "from the hook"
    assert not pepper.llm.initialized and pepper.llm.calls == []
    await pepper.aclose()


async def test_facade_options_reach_hooks_not_the_provider(mock_manager):
    settings: list[dict[str, Any]] = []

    async def look(call: Call, call_next):
        settings.append(dict(call.settings))
        assert "cache" not in call.options
        return await call_next(call)

    async with facade(mock_manager).with_hook(look) as pepper:
        await pepper.chat.with_user("x").with_options(cache=False, temperature=0.1).generate()
    assert settings == [{"cache": False}]


async def test_stream_hooks_see_and_transform_chunks(mock_manager):
    async def upper(call: Call, call_next):  # an async generator hook returns the stream directly
        async for chunk in await call_next(call):
            yield chunk.model_copy(update={"content": chunk.content.upper()})

    async def count(call: Call, call_next):  # an async def hook returns an iterator
        chunks = await call_next(call)
        seen.append(call.stream)
        return chunks

    seen: list[bool] = []
    async with facade(mock_manager).with_hook(count).with_hook(upper) as pepper:
        pieces = [c.content async for c in pepper.chat.with_user("one two three").stream()]
    assert "".join(pieces) == "ONE TWO THREE"
    assert len([p for p in pieces if p]) == 3 and seen == [True]


async def test_a_hook_replays_a_stream_without_the_provider(mock_manager):
    async def replay(call: Call, call_next):
        for piece in ["a", "b", "c"]:
            yield GenerationChunk(content=piece)

    pepper = facade(mock_manager).with_hook(replay)
    pieces = [c.content async for c in pepper.chat.with_user("x").stream()]
    assert pieces == ["a", "b", "c"] and not pepper.llm.initialized
    await pepper.aclose()


async def test_a_hook_raising_while_handling_the_calls_error_reports_both(mock_manager):
    async def clumsy(call: Call, call_next):
        try:
            return await call_next(call)
        finally:
            raise RuntimeError("the hook broke")

    async with facade(mock_manager, replies=["only"], cycle=False).with_hook(clumsy) as pepper:
        pepper.llm._next = 1  # the scripted replies are used up: the provider raises
        with pytest.raises(PepperPyErrorGroup) as caught:
            await pepper.chat.with_user("x").generate()
    kinds = [type(e) for e in caught.value.exceptions]
    assert kinds == [LLMError, RuntimeError]
    assert "clumsy" in str(caught.value) and "scripted replies" in str(caught.value)


async def test_a_hook_translating_the_error_with_from_is_left_alone(mock_manager):
    async def translate(call: Call, call_next):
        try:
            return await call_next(call)
        except LLMError as exc:
            raise ValueError("translated") from exc

    async with facade(mock_manager, replies=["r"], cycle=False).with_hook(translate) as pepper:
        pepper.llm._next = 1
        with pytest.raises(ValueError, match="translated") as caught:
            await pepper.chat.with_user("x").generate()
    assert isinstance(caught.value.__cause__, LLMError)


async def test_a_hook_returning_the_wrong_type_is_named(mock_manager):
    async def sloppy(call: Call, call_next):
        return "text"

    async with facade(mock_manager).with_hook(sloppy) as pepper:
        with pytest.raises(PluginError, match="sloppy.*returned str"):
            await pepper.chat.with_user("x").generate()


def test_a_hook_must_be_callable(mock_manager):
    with pytest.raises(ConfigError, match="async callable"):
        facade(mock_manager).with_hook("not a hook")  # type: ignore[arg-type]


async def test_usage_sums_tokens_per_provider_and_model_and_counts_hook_answers_apart(mock_manager):
    served_by_cache = False

    async def sometimes_cached(call: Call, call_next):
        if served_by_cache:
            return GenerationResult(content="c", usage=Usage(prompt_tokens=7, completion_tokens=1), metadata={"cache": "hit", "model": "mock"})
        return await call_next(call)

    async with facade(mock_manager).with_hook(sometimes_cached) as pepper:
        await pepper.chat.with_user("one two three").generate()  # 3 prompt words, 3 answer words
        async for _ in pepper.chat.with_user("four five").stream():
            pass
        served_by_cache = True
        await pepper.chat.with_user("x").generate()
        usage = pepper.usage
    totals = usage[("llm/mock", "mock")]
    assert list(usage) == [("llm/mock", "mock")]  # a stream reports its model on its last chunk
    assert (totals.calls, totals.prompt_tokens, totals.completion_tokens) == (1 + 1, 3 + 2, 3 + 2)
    assert usage.total.cached_calls == 1 and usage.total.cached_prompt_tokens == 7
    assert usage.total.total_tokens == 10
    assert "llm/mock" in str(usage)


async def test_without_any_hook_a_stream_is_counted_at_its_end_and_not_when_left_early(mock_manager, monkeypatch):
    """No hook configured (not even tracing): the provider's stream is passed on directly, usage still counted."""
    monkeypatch.setattr("pepperpy._tracing.tracing_hook", lambda: None)
    async with facade(mock_manager) as pepper:
        chunks = [chunk async for chunk in pepper.chat.with_user("four five").stream()]
        async for _ in pepper.chat.with_user("left early").stream():
            break
        await pepper.chat.with_user("one two three").generate()
        usage = pepper.usage
    assert "".join(c.content for c in chunks) == "four five" and chunks[-1].usage is not None
    totals = usage[("llm/mock", "mock")]
    assert (totals.calls, totals.prompt_tokens, totals.completion_tokens) == (2, 2 + 3, 2 + 3)


async def test_conversations_carry_an_id_to_hooks(mock_manager):
    ids: list[str | None] = []

    async def look(call: Call, call_next):
        ids.append(call.conversation_id)
        return await call_next(call)

    async with facade(mock_manager).with_hook(look) as pepper:
        conversation = pepper.conversation()
        await conversation.say("a")
        await conversation.say("b")
        await pepper.chat.with_user("c").generate()
    assert ids[0] == ids[1] == conversation.conversation_id and ids[2] is None


async def test_process_wide_hooks_come_from_register_hook(mock_manager, monkeypatch):
    import pepperpy.plugins
    from pepperpy import plugin_manager

    monkeypatch.setattr(plugin_manager.PluginManager, "_instance", mock_manager, raising=False)
    monkeypatch.setattr(plugin_manager, "get_plugin_manager", lambda: mock_manager)
    tagged: list[str] = []

    async def tag(call: Call, call_next):
        tagged.append(call.provider)
        return await call_next(call)

    pepperpy.plugins.register_hook(tag)
    async with facade(mock_manager) as pepper:
        await pepper.chat.with_user("x").generate()
    assert tagged == ["llm/mock"]


async def test_each_call_is_an_opentelemetry_span_with_genai_attributes(mock_manager):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process; later calls are ignored with a warning
    if trace.get_tracer_provider() is not provider:
        pytest.skip("another test set the global OpenTelemetry tracer provider first")

    async with facade(mock_manager) as pepper:
        await pepper.chat.with_user("one two").with_options(temperature=0.2, model="m1").generate()
        async for _ in pepper.chat.with_user("three").stream():
            pass
    spans = exporter.get_finished_spans()
    assert [s.name for s in spans] == ["chat m1", "chat"]
    first = dict(spans[0].attributes)
    assert first["gen_ai.operation.name"] == "chat" and first["gen_ai.provider.name"] == "mock"
    assert first["gen_ai.request.model"] == "m1" and first["gen_ai.request.temperature"] == 0.2
    assert (first["gen_ai.usage.input_tokens"], first["gen_ai.usage.output_tokens"]) == (2, 2)
    assert spans[0].kind == trace.SpanKind.CLIENT
    assert dict(spans[1].attributes)["gen_ai.usage.output_tokens"] == 1


async def test_without_a_tracer_provider_the_tracing_hook_is_skipped_until_one_is_set(mock_manager, monkeypatch):
    """OpenTelemetry installed but no tracer provider set (its default): spans would be dropped, so no hook runs;
    a provider set later is used from the next call on."""
    from opentelemetry import trace

    import pepperpy.hooks

    unset, composed = trace.ProxyTracerProvider(), []
    current: list[Any] = [unset]
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: current[0])
    real_compose = pepperpy.hooks.compose
    monkeypatch.setattr(pepperpy.hooks, "compose", lambda hooks, inner: composed.append(hooks) or real_compose(hooks, inner))
    async with facade(mock_manager) as pepper:
        await pepper.chat.with_user("one").generate()
        [_ async for _ in pepper.chat.with_user("two").stream()]
        assert composed == []  # the provider itself, no layer around it
        current[0] = trace.NoOpTracerProvider()
        await pepper.chat.with_user("three").generate()
        assert composed == []
        current[0] = object()  # an application's tracer provider
        await pepper.chat.with_user("four").generate()
    assert len(composed) == 1 and [type(h).__name__ for h in composed[0]] == ["Tracer"]


async def test_closing_a_stream_early_closes_every_hook_and_the_provider_at_once(mock_manager):
    from contextlib import aclosing

    closed: list[str] = []

    class Slow(__import__("pepperpy.llm", fromlist=["LLMProvider"]).LLMProvider):
        async def generate(self, messages, **options):
            return GenerationResult(content="x")

        async def generate_stream(self, messages, **options):
            try:
                for n in range(100):
                    yield GenerationChunk(content=f"{n} ")
            finally:
                closed.append("provider")

    async def watching(call: Call, call_next):
        try:
            async for chunk in await call_next(call):
                yield chunk
        finally:
            closed.append("hook")

    mock_manager.register_plugin("llm", "slow", Slow)
    async with PepperPy(plugin_manager=mock_manager).with_llm("slow").with_cache().with_hook(watching) as pepper:
        async with aclosing(pepper.chat.with_user("x").stream()) as stream:
            async for _ in stream:
                break
        assert closed == ["hook", "provider"]  # before the block's next line, not at garbage collection


def test_replacing_a_field_a_call_does_not_have_names_the_fields():
    from pepperpy.llm import Message

    call = Call("llm/mock", (Message(role="user", content="x"),))
    with pytest.raises(ConfigError, match=r"'temperature'.*options=\{"):
        call.replace(temperature=0)
    assert call.replace(options={"temperature": 0}).options == {"temperature": 0}


def test_a_call_keeps_a_read_only_copy_of_the_options_given():
    """split_options hands the caller's options on uncopied when they hold no facade setting; the Call copies them."""
    from pepperpy.hooks import split_options

    options = {"temperature": 0.1}
    provider_options, settings = split_options(options)
    call = Call("llm/mock", (), provider_options, settings=settings)
    options["temperature"] = 0.9
    assert call.options == {"temperature": 0.1} and dict(call.settings) == {}
    with pytest.raises(TypeError):
        call.options["seed"] = 1  # type: ignore[index]
    assert split_options({"cache": False, "seed": 1}) == ({"seed": 1}, {"cache": False})
