"""llm/openai against llama.cpp's real OpenAI-compatible HTTP server serving SmolLM2 on 127.0.0.1."""

from __future__ import annotations

import asyncio

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy

pytestmark = pytest.mark.integration
SETTINGS = {"temperature": 0, "seed": 3, "max_tokens": 30}


class City(BaseModel):
    name: str
    country: str


@pytest.fixture
async def pepper(remote_manager, llama_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=llama_server, api_key="sk-local-test", **SETTINGS
    ) as ready:
        yield ready


def capital_question(pepper):
    return pepper.chat.with_system("Be brief.").with_user("What is the capital of France?")


async def test_canonical_example_with_openai_pointed_at_the_server(remote_manager, llama_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        provider_type="openai", base_url=llama_server, api_key="sk-local-test", temperature=0
    ) as pepper:
        result = await pepper.chat.with_system("Be brief.").with_user("What is the capital of France?").generate()
    assert "Paris" in result.content


async def test_generate_reports_usage_and_metadata(pepper):
    result = await capital_question(pepper).generate()
    assert "Paris" in result.content
    assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= SETTINGS["max_tokens"]
    assert result.metadata["finish_reason"] in ("stop", "length")


async def test_stream_matches_generate_and_ends_with_usage(pepper):
    whole = await capital_question(pepper).generate()
    chunks = [chunk async for chunk in capital_question(pepper).stream()]
    assert "".join(c.content for c in chunks) == whole.content
    assert len([c for c in chunks if c.content]) > 2
    assert any(c.finish_reason for c in chunks)
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


async def test_stop_sequence_cuts_the_answer(pepper):
    full = await capital_question(pepper).generate()
    assert " is " in full.content
    stopped = await capital_question(pepper).with_options(stop=[" is "]).generate()
    assert stopped.content == full.content.split(" is ")[0]


async def test_json_schema_structured_output(pepper):
    chat = pepper.chat.with_system("Be brief.").with_user("Give the capital of Italy as JSON.")
    result = await chat.with_response_model(City).with_options(max_tokens=60).generate()
    assert isinstance(result.parsed, City) and result.parsed.name


async def test_many_concurrent_requests(pepper):
    results = await asyncio.gather(*(capital_question(pepper).generate() for _ in range(16)))
    assert all("Paris" in r.content for r in results)


async def test_llamacpp_preset_needs_no_key(remote_manager, llama_server, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    async with PepperPy(plugin_manager=remote_manager).with_llm("llamacpp", base_url=llama_server, temperature=0) as pepper:
        assert (pepper.llm.name, pepper.llm.alias) == ("openai", "llamacpp")
        assert "Paris" in (await capital_question(pepper).generate()).content


# Idle gaps after each round of 8 calls: around llama.cpp's keep-alive timeout (cpp-httplib closes a
# connection idle for 5 s) and around the pool's own expiry (pepperpy.http.KEEPALIVE_EXPIRY_S, 3 s).
SOAK_GAPS_S = [4.9, 5.1, 2.9, 3.1]


async def test_a_soak_with_idle_gaps_around_the_keep_alive_timeout_has_no_failures(remote_manager, llama_server):
    """40 calls, 8 at a time, idling around the times at which the server or the pool drops idle connections.

    A connection the server closed while idle must never be used, and one it closes as a
    request arrives must be sent again (pepperpy/http.py): every call gets its answer.
    """
    failures: list[str] = []
    answers = 0

    async def one(pepper: PepperPy, n: int) -> None:
        nonlocal answers
        try:
            await pepper.chat.with_user(f"Say {n}.").generate()
            answers += 1
        except Exception as exc:  # noqa: BLE001 - every failure is collected and shown
            failures.append(f"{type(exc).__name__}: {exc}")

    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=llama_server, api_key="sk-local-test", temperature=0, max_tokens=1, timeout=120
    ) as pepper:
        for gap in [0.0, *SOAK_GAPS_S]:
            await asyncio.sleep(gap)
            await asyncio.gather(*(one(pepper, n) for n in range(8)))
    assert failures == []
    assert answers == 8 * (1 + len(SOAK_GAPS_S))


async def test_a_repeated_prompt_reports_cached_tokens(pepper):
    question = "Name three rivers of Europe, one per line."
    await pepper.chat.with_user(question).generate()
    again = await pepper.chat.with_user(question).generate()
    assert 0 < again.usage.cache_read_tokens <= again.usage.prompt_tokens
