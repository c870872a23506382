"""``usage.cost``: a call priced in USD by genai-prices (compared with its own calc_price), cached tokens priced
as such, None for what it does not know and when it is not installed; genai-prices imported only when a cost is
read. And the counts every provider's wire format reports: cached, cache-write and reasoning tokens."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from pepperpy import _prices
from pepperpy.llm import Usage


def genai(model: str, service: str, **counts: int):
    return calc_price(GenaiUsage(**counts), model, provider_id=service).total_price


@pytest.mark.parametrize(("usage", "expected"), [
    (Usage(prompt_tokens=1000, completion_tokens=100, model="gpt-4o", service="openai"),
     dict(model="gpt-4o", service="openai", input_tokens=1000, output_tokens=100)),
    (Usage(prompt_tokens=4740, completion_tokens=255, cache_read_tokens=0, cache_write_tokens=4735,
           model="claude-sonnet-4-20250514", service="anthropic"),
     dict(model="claude-sonnet-4-20250514", service="anthropic", input_tokens=4740, cache_write_tokens=4735,
          output_tokens=255)),
    (Usage(prompt_tokens=2000, completion_tokens=45, cache_read_tokens=1500, reasoning_tokens=40,
           model="gemini-2.5-flash", service="google"),
     dict(model="gemini-2.5-flash", service="google", input_tokens=2000, cache_read_tokens=1500, output_tokens=45)),
])
def test_a_known_model_costs_what_genai_prices_says(usage, expected):
    assert usage.cost is not None and usage.cost > 0
    assert usage.cost == genai(**expected)


def test_cached_prompt_tokens_cost_less_and_cache_writes_more_on_anthropic():
    claude = dict(prompt_tokens=10_000, completion_tokens=100, model="claude-sonnet-4-5-20250929", service="anthropic")
    plain, read, written = Usage(**claude), Usage(**claude, cache_read_tokens=9000), Usage(**claude, cache_write_tokens=9000)
    assert read.cost < plain.cost < written.cost
    openai = dict(prompt_tokens=10_000, completion_tokens=100, model="gpt-4o", service="openai")
    assert Usage(**openai, cache_read_tokens=9000).cost < Usage(**openai).cost


@pytest.mark.parametrize("usage", [
    Usage(prompt_tokens=10, completion_tokens=3, model="no-such-model-anywhere", service="openai"),
    Usage(prompt_tokens=10, completion_tokens=3, model="gpt-4o", service=None),  # a local server: never a guess
    Usage(prompt_tokens=10, completion_tokens=3, model="gpt-4o", service="no-such-service"),
    Usage(prompt_tokens=10, completion_tokens=3, model=None, service="openai"),
    Usage(prompt_tokens=10, completion_tokens=3, cache_read_tokens=50, model="gpt-4o", service="openai"),  # inconsistent
])
def test_what_genai_prices_does_not_know_costs_none(usage):
    assert usage.cost is None


def test_cost_survives_json_like_the_cache_and_the_worker_send_it():
    usage = Usage(prompt_tokens=1000, completion_tokens=100, cache_read_tokens=512, model="gpt-4o", service="openai")
    again = Usage.model_validate_json(usage.model_dump_json(exclude_none=True))
    assert again == usage and again.cost == usage.cost


def test_without_genai_prices_cost_is_none_with_one_warning(monkeypatch):
    monkeypatch.setitem(sys.modules, "genai_prices", None)  # `import genai_prices` raises ImportError
    _prices._genai_prices.cache_clear()
    usage = Usage(prompt_tokens=1000, completion_tokens=100, model="gpt-4o", service="openai")
    try:
        with pytest.warns(RuntimeWarning, match=r"pip install 'pepperpy\[cost\]'") as warned:
            assert usage.cost is None
            assert usage.cost is None
        assert len(warned) == 1
    finally:
        _prices._genai_prices.cache_clear()


def test_import_pepperpy_and_calls_do_not_import_genai_prices():
    code = textwrap.dedent("""
        import asyncio, json, sys
        import pepperpy
        after_import = "genai_prices" in sys.modules
        async def main():
            async with pepperpy.PepperPy().with_llm("mock") as pepper:
                result = await pepper.chat.with_user("hi").generate()
                [c async for c in pepper.chat.with_user("hi").stream()]
                totals = pepper.usage.total
                return result, totals
        result, totals = asyncio.run(main())
        after_calls = "genai_prices" in sys.modules
        cost = result.usage.cost, totals.cost
        print(json.dumps([after_import, after_calls, "genai_prices" in sys.modules, repr(cost)]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    after_import, after_calls, after_cost, cost = json.loads(done.stdout.splitlines()[-1])
    assert (after_import, after_calls) == (False, False)
    assert cost == "(None, None)" and after_cost is False, "the mock names no service: nothing to price or load"


# -- the counts each wire format reports -------------------------------------------------------------------


def plugin_module(manager, name: str, module: str):
    provider_class = manager.load_class("llm", name)
    return sys.modules[provider_class.__module__.rsplit(".", 1)[0] + "." + module]


def test_openai_chat_reads_cached_and_reasoning_tokens(builtin_manager):
    wire = plugin_module(builtin_manager, "openai", "wire")
    raw = {"prompt_tokens": 1200, "completion_tokens": 300, "prompt_tokens_details": {"cached_tokens": 1024},
           "completion_tokens_details": {"reasoning_tokens": 256}}
    usage = wire.usage(raw, "o3-mini-2025-01-31", "openai")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cache_read_tokens, usage.reasoning_tokens) == (
        1200, 300, 1024, 256)
    assert usage.cache_write_tokens is None
    bare = wire.usage({"prompt_tokens": 5, "completion_tokens": 2})
    assert (bare.cache_read_tokens, bare.reasoning_tokens, bare.service) == (None, None, None), "not reported: None"


@pytest.mark.parametrize(("base_url", "service"), [
    ("https://api.openai.com/v1", "openai"), ("https://api.groq.com/openai/v1", "groq"),
    ("https://api.deepseek.com/v1", "deepseek"), ("https://openrouter.ai/api/v1", "openrouter"),
    ("https://my-resource.openai.azure.com/openai/v1", "azure"),
    ("http://127.0.0.1:8080/v1", None), ("http://127.0.0.1:11434/v1", None), ("https://gateway.example.com/v1", None),
])
def test_openai_base_urls_map_to_genai_prices_provider_ids(builtin_manager, base_url, service):
    assert plugin_module(builtin_manager, "openai", "wire").service_of(base_url) == service


def test_anthropic_reads_cache_reads_and_writes_answer_and_stream(builtin_manager):
    wire = plugin_module(builtin_manager, "anthropic", "wire")
    raw = {"input_tokens": 3, "cache_creation_input_tokens": 418, "cache_read_input_tokens": 1111, "output_tokens": 33}
    _, _, usage = wire.parse_answer({"content": [], "model": "claude-sonnet-4-5-20250929", "usage": raw}, "llm/anthropic")
    assert (usage.prompt_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.completion_tokens) == (
        3 + 418 + 1111, 1111, 418, 33)
    assert (usage.model, usage.service) == ("claude-sonnet-4-5-20250929", "anthropic")
    state = wire.StreamState("llm/anthropic")
    state.take("message_start", {"message": {"model": "claude-sonnet-4-5-20250929", "usage": {**raw, "output_tokens": 1}}})
    state.take("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 33}})
    assert state.usage == usage


def test_gemini_reads_cached_and_thinking_tokens_into_usage(builtin_manager):
    wire = plugin_module(builtin_manager, "gemini", "wire")
    usage = wire.usage({"promptTokenCount": 2000, "cachedContentTokenCount": 1500, "candidatesTokenCount": 5,
                        "thoughtsTokenCount": 40}, "gemini-2.5-flash")
    assert (usage.prompt_tokens, usage.completion_tokens, usage.cache_read_tokens, usage.reasoning_tokens) == (
        2000, 45, 1500, 40)
    assert usage.service == "google"
    bare = wire.usage({"promptTokenCount": 9, "candidatesTokenCount": 9}, "gemini-2.5-flash")
    assert (bare.cache_read_tokens, bare.reasoning_tokens) == (None, None)


# -- pepper.usage totals ---------------------------------------------------------------------------------


def test_report_totals_sum_each_calls_price_and_count_what_is_not_priced():
    from pepperpy._usage import UsageReport

    report = UsageReport()
    gpt = [Usage(prompt_tokens=n, completion_tokens=n // 10, cache_read_tokens=n // 2, model="gpt-4o", service="openai")
           for n in (1200, 3400)]
    claude = Usage(prompt_tokens=5000, completion_tokens=90, cache_write_tokens=4000, model="claude-sonnet-4-5-20250929",
                   service="anthropic")
    local = Usage(prompt_tokens=50, completion_tokens=5, cache_read_tokens=40, model="SmolLM2.gguf")
    for usage in gpt:
        report.record("llm/openai", "gpt-4o", usage, cached=False)
    report.record("llm/openai", "gpt-4o", gpt[0], cached=True)  # an answer the response cache served: free
    report.record("llm/anthropic", "claude-sonnet-4-5", claude, cached=False)
    report.record("llm/local", None, local, cached=False)
    report.record("llm/local", None, None, cached=False)
    openai = report["llm/openai", "gpt-4o"]
    assert openai.cost == gpt[0].cost + gpt[1].cost and openai.unpriced_calls == 0
    assert (openai.calls, openai.cached_calls, openai.cache_read_tokens) == (2, 1, 600 + 1700)
    assert report["llm/local", "?"].cost is None and report["llm/local", "?"].unpriced_calls == 2
    total = report.total
    assert total.cost == gpt[0].cost + gpt[1].cost + claude.cost
    assert (total.calls, total.unpriced_calls, total.cache_read_tokens, total.cache_write_tokens) == (5, 2, 2340, 4000)
    assert f"{claude.cost:.6f}" in str(report) and "-" in str(report).splitlines()[-1]


def test_totals_price_pending_calls_once_they_reach_the_limit(monkeypatch):
    from pepperpy import _usage

    monkeypatch.setattr(_usage, "FOLD_AT", 3)
    totals = _usage.UsageTotals()
    usage = Usage(prompt_tokens=100, completion_tokens=10, model="gpt-4o", service="openai")
    for _ in range(2):
        totals.add(usage, cached=False)
    assert len(totals._pending) == 2 and totals._cost is None, "not priced while the calls are made"
    totals.add(usage, cached=False)
    assert totals._pending == [] and totals._cost == 3 * usage.cost
    totals.add(usage, cached=False)
    assert totals.cost == 4 * usage.cost


# -- OpenTelemetry spans -----------------------------------------------------------------------------------


@pytest.mark.parametrize("stream", [False, True])
async def test_spans_carry_cache_and_reasoning_tokens_by_the_genai_conventions(stream):
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pepperpy._tracing import Tracer
    from pepperpy.hooks import Call
    from pepperpy.llm import GenerationChunk, GenerationResult, Message

    exporter = InMemorySpanExporter()
    provider = TracerProvider()  # this test's own: the global one is left alone
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = Tracer(trace, provider.get_tracer("test"))
    detailed = Usage(prompt_tokens=1200, completion_tokens=300, cache_read_tokens=1024, cache_write_tokens=100,
                     reasoning_tokens=256, model="gpt-4o", service="openai")

    async def answer(call):
        if call.stream:
            async def chunks():
                yield GenerationChunk(content="a")
                yield GenerationChunk(finish_reason="stop", usage=detailed)
            return chunks()
        return GenerationResult(content="a", usage=detailed)

    outcome = await tracer(Call("llm/openai", (Message(role="user", content="x"),), stream=stream), answer)
    if stream:
        [c async for c in outcome]
    (span,) = exporter.get_finished_spans()
    attributes = dict(span.attributes)
    assert attributes["gen_ai.usage.input_tokens"] == 1200 and attributes["gen_ai.usage.output_tokens"] == 300
    assert attributes["gen_ai.usage.cache_read.input_tokens"] == 1024
    assert attributes["gen_ai.usage.cache_creation.input_tokens"] == 100
    assert attributes["gen_ai.usage.reasoning.output_tokens"] == 256


async def test_spans_leave_out_what_the_service_did_not_report():
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from pepperpy._tracing import Tracer
    from pepperpy.hooks import Call
    from pepperpy.llm import GenerationResult, Message

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def answer(call):
        return GenerationResult(content="a", usage=Usage(prompt_tokens=3, completion_tokens=1))

    await Tracer(trace, provider.get_tracer("test"))(Call("llm/mock", (Message(role="user", content="x"),)), answer)
    (span,) = exporter.get_finished_spans()
    assert not [name for name in span.attributes if "cache" in name or "reasoning" in name]


def test_openai_responses_reads_cached_and_reasoning_tokens(builtin_manager):
    responses = plugin_module(builtin_manager, "openai", "responses")
    raw = {"input_tokens": 53, "input_tokens_details": {"cached_tokens": 32}, "output_tokens": 469,
           "output_tokens_details": {"reasoning_tokens": 448}}
    usage = responses.usage(raw, "gpt-5-2025-08-07", "openai")
    assert (usage.prompt_tokens, usage.cache_read_tokens, usage.completion_tokens, usage.reasoning_tokens) == (
        53, 32, 469, 448)
    assert usage.cost == genai("gpt-5-2025-08-07", "openai", input_tokens=53, cache_read_tokens=32, output_tokens=469)
    bare = responses.usage({"input_tokens": 5, "output_tokens": 2})
    assert (bare.cache_read_tokens, bare.reasoning_tokens, bare.cost) == (None, None, None)


def test_bedrock_reads_cache_reads_and_writes_and_prices_them_as_aws(builtin_manager):
    wire = plugin_module(builtin_manager, "bedrock", "wire")
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    usage = wire.usage({"inputTokens": 2, "cacheReadInputTokens": 1322, "cacheWriteInputTokens": 0, "outputTokens": 5},
                       model)
    assert (usage.prompt_tokens, usage.cache_read_tokens, usage.cache_write_tokens, usage.service) == (
        1324, 1322, 0, "aws")
    assert usage.cost == genai(model, "aws", input_tokens=1324, cache_read_tokens=1322, output_tokens=5)
    bare = wire.usage({"inputTokens": 2, "outputTokens": 5}, model)
    assert (bare.cache_read_tokens, bare.cache_write_tokens) == (None, None)


async def test_a_usage_key_with_no_calls_names_the_keys_there_are():
    """``pepper.usage["mock", "mock"]`` (a plugin's name, not its id): the KeyError lists the keys to use."""
    from pepperpy import PepperPy

    async with PepperPy().with_llm("mock") as pepper:
        await pepper.chat.with_user("Hi").generate()
        assert pepper.usage["llm/mock", "mock"].calls == 1
        with pytest.raises(KeyError) as caught:
            pepper.usage["mock", "mock"]
    message = str(caught.value)
    assert "no calls of ('mock', 'mock')" in message and "('llm/mock', 'mock')" in message, message
