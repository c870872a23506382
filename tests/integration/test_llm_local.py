"""llm/local against the real SmolLM2 model running in llama.cpp (xllamacpp) in-process."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError

pytestmark = pytest.mark.integration

SETTINGS = {"temperature": 0, "seed": 7, "max_tokens": 40}


class City(BaseModel):
    name: str
    country: str


@pytest.fixture(scope="module")
async def pepper(local_manager):
    async with PepperPy(plugin_manager=local_manager).with_llm("local", **SETTINGS) as ready:
        yield ready


async def ask(pepper, question: str, **options):
    return await pepper.chat.with_system("Be brief.").with_user(question).with_options(**options).generate()


async def test_generates_real_deterministic_text_with_usage(pepper):
    first = await ask(pepper, "What is the capital of France?")
    second = await ask(pepper, "What is the capital of France?")
    assert "Paris" in first.content
    assert first.content == second.content
    assert first.usage.prompt_tokens > 5 and 0 < first.usage.completion_tokens <= SETTINGS["max_tokens"]
    assert first.messages[-1].content == first.content


async def test_stream_concatenates_to_the_generated_text(pepper):
    whole = await ask(pepper, "Name three animals.")
    chat = pepper.chat.with_system("Be brief.").with_user("Name three animals.")
    chunks = [chunk async for chunk in chat.stream()]
    assert len([c for c in chunks if c.content]) > 3
    assert "".join(c.content for c in chunks) == whole.content
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens


async def test_structured_output_is_schema_valid(pepper):
    chat = pepper.chat.with_system("Be brief.").with_user("Give the capital of Italy as JSON.")
    result = await chat.with_response_model(City).with_options(max_tokens=60).generate()
    assert isinstance(result.parsed, City)
    assert City.model_validate_json(result.content) == result.parsed


async def test_concurrent_generations_are_safe(pepper):
    questions = ["What is the capital of France?", "Name three animals.", "What is 2 + 2?"]
    sequential = [(await ask(pepper, q)).content for q in questions]
    concurrent = await asyncio.gather(*(ask(pepper, q) for q in questions))
    assert [r.content for r in concurrent] == sequential


async def test_leaving_a_stream_early_stops_generation(pepper):
    chat = pepper.chat.with_user("Count from one to two hundred.").with_options(max_tokens=200)
    before = await predicted_tokens(pepper)
    received = 0
    async for chunk in chat.stream():
        received += bool(chunk.content)
        if received == 3:
            break
    generated = await predicted_tokens(pepper) - before
    assert generated < 20, f"llama.cpp went on generating {generated} tokens after the consumer left"
    assert (await ask(pepper, "What is the capital of France?")).content


async def predicted_tokens(pepper) -> int:
    """llama.cpp's own counter of generated tokens, from its Prometheus metrics text."""
    metrics = pepper.llm._server.handle_metrics()
    return int(float(re.search(r"^llamacpp:tokens_predicted_total (\S+)$", metrics, re.MULTILINE).group(1)))


async def test_prompt_longer_than_the_context_is_a_clear_error_and_the_next_call_works(pepper):
    with pytest.raises(LLMError, match=r"more than the context window n_ctx=2048.*n_ctx=\.\.\."):
        await ask(pepper, "word " * 3000)
    with pytest.raises(LLMError, match="n_ctx=2048"):
        async for _ in pepper.chat.with_user("word " * 3000).stream():
            pass
    assert "Paris" in (await ask(pepper, "What is the capital of France?")).content


async def test_unknown_call_option_names_it(pepper):
    with pytest.raises(ConfigError, match=r"llm/local: unknown call option 'temprature'; did you mean 'temperature'\?"):
        await ask(pepper, "hi", temprature=0)


def test_unknown_config_option_fails_at_with_llm(local_manager):
    with pytest.raises(ConfigError, match=r"unknown option 'n_ctxx' for llm/local; did you mean 'n_ctx'\?"):
        PepperPy(plugin_manager=local_manager).with_llm("local", n_ctxx=10)


@pytest.mark.parametrize(
    ("make_path", "expected"),
    [
        (lambda tmp: tmp / "missing.gguf", "cannot read model_path"),
        (lambda tmp: tmp, "cannot read model_path"),
        (lambda tmp: (tmp / "fake.gguf").write_text("not a model") and tmp / "fake.gguf", "is not a GGUF file"),
    ],
    ids=["missing-file", "unreadable-directory", "not-gguf"],
)
def test_bad_model_file_fails_at_with_llm_naming_it(local_manager, tmp_path, make_path, expected):
    path = make_path(tmp_path)
    with pytest.raises(ConfigError, match=expected) as raised:
        PepperPy(plugin_manager=local_manager).with_llm("local", model_path=path)
    assert str(path) in str(raised.value)


async def test_cleanup_frees_the_model_and_it_can_load_again(local_manager):
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", **SETTINGS)
    async with pepper:
        assert pepper.llm._server is not None
    assert pepper.llm._server is None and not pepper.llm.initialized
    async with pepper:
        assert "Paris" in (await ask(pepper, "What is the capital of France?")).content


async def test_quickstart_shape_works_unchanged(local_manager):
    async with PepperPy(plugin_manager=local_manager).with_llm("local") as pepper:
        result = await pepper.chat.with_system("Be brief.").with_user("Hi").generate()
    assert result.content.strip()


def test_llama_server_fixture_serves_the_model_over_http(llama_server):
    response = httpx.post(
        f"{llama_server}/chat/completions",
        json={
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "What is the capital of France?"},
            ],
            "max_tokens": 20,
            "temperature": 0,
        },
        timeout=60,
    )
    assert response.status_code == 200
    assert "Paris" in response.json()["choices"][0]["message"]["content"]
