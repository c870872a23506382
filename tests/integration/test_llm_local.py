"""llm/local against the real SmolLM2 model running in llama.cpp (xllamacpp) in-process."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from loguru import logger
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError

pytestmark = pytest.mark.integration

SETTINGS = {"temperature": 0, "seed": 7, "max_tokens": 40}
ROOT = Path(__file__).resolve().parents[2]
HARD_LIMIT_S = 400  # far past any close that ends: only one that never does reaches it


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


@pytest.mark.parametrize("call", ["stream", "generate"])
async def test_a_close_while_answering_is_an_error_and_the_conversation_keeps_no_cut_turn(local_manager, call):
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, seed=7, max_tokens=400)
    async with pepper:
        conv = pepper.conversation()
        got: list[str] = []

        async def answer() -> None:
            if call == "stream":
                async for chunk in conv.stream("Write a long story about a cat."):
                    got.append(chunk.content)
            else:
                await conv.say("Write a long story about a cat.")

        task = asyncio.create_task(answer())
        if call == "stream":
            await until_true(lambda: len(got) >= 5 or task.done())
        else:
            await until_true(lambda: bool(pepper.llm._running) or task.done())
        await pepper.aclose()
        with pytest.raises(LLMError, match="llm/local was closed while"):
            await task
        assert conv.messages == [], "a cut answer is not kept as a complete turn"


async def until_true(check, deadline_s: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_s
    while not check():
        assert time.monotonic() < deadline, "not reached"
        await asyncio.sleep(0.01)


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


CLOSE_SCRIPT = Path(__file__).with_name("close_local_models.py")
ROUNDS = 4
BUSY_PROCESSES = 2


def test_closing_many_models_while_calls_are_cancelled_ends_and_the_loop_keeps_running(local_manager, session_home):
    """Each round opens the model and closes it, every other round at once (as the test above does) and otherwise
    while a stream runs, a call waits for the busy slot and a generate is cancelled, one of them during the close;
    on one CPU shared with busy processes. A close stuck in llama.cpp holds the GIL, so this runs in a child
    process whose watchdog prints the stacks; the loop's ticker must have run during each close that waited for
    generation to stop, and the process must still answer afterwards."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(
        [sys.executable, str(CLOSE_SCRIPT), str(session_home), str(ROUNDS), str(BUSY_PROCESSES), str(HARD_LIMIT_S)],
        capture_output=True, text=True, timeout=HARD_LIMIT_S + 60, env=env, cwd=ROOT,
    )
    assert done.returncode == 0, f"opening and closing llm/local {ROUNDS} times did not end:\n{done.stderr}"
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert "Paris" in report["answer"]  # the process is still usable
    ticks = report["ticks_during_close"]
    assert len(ticks) == ROUNDS
    assert all(t > 0 for t in ticks[1::2]), f"the event loop did not run while a close waited for llama.cpp: {ticks}"


async def test_a_close_past_its_deadline_warns_and_lets_go_later(local_manager, monkeypatch):
    """Past CLOSE_TIMEOUT_S the close returns with a warning, the model stays in the graveyard, and a background
    thread frees it once llama.cpp answers; the process goes on and a model opens again. llama.cpp cannot be
    made to hang on demand, so the close thread is held at its first step until the close has returned."""
    provider_class = local_manager.load_class("llm", "local")
    # The globals of the module this class came from: sys.modules may hold another manager's load of the folder.
    module = provider_class._release.__globals__
    graveyard = module["_graveyard"]
    release = threading.Event()
    stop_all = provider_class._stop_all
    monkeypatch.setattr(provider_class, "_stop_all", lambda self: release.wait() and stop_all(self))
    monkeypatch.setitem(module, "CLOSE_TIMEOUT_S", 0.2)
    before = set(graveyard)
    warnings: list[str] = []
    logger.enable("pepperpy")
    sink = logger.add(lambda message: warnings.append(str(message)), level="WARNING")
    try:
        async with PepperPy(plugin_manager=local_manager).with_llm("local", **SETTINGS) as pepper:
            await ask(pepper, "What is the capital of France?")
    finally:
        logger.remove(sink)
        logger.disable("pepperpy")
    kept = set(graveyard) - before
    release.set()
    assert any("did not let go of the model within 0.2s" in w for w in warnings), warnings
    assert len(kept) == 1, "the server still held by llama.cpp was not kept in the graveyard"
    deadline = time.monotonic() + 60
    while kept & set(graveyard):
        assert time.monotonic() < deadline, "the background thread never let go of the model"
        await asyncio.sleep(0.05)
    monkeypatch.undo()
    async with PepperPy(plugin_manager=local_manager).with_llm("local", **SETTINGS) as pepper:
        assert "Paris" in (await ask(pepper, "What is the capital of France?")).content


async def test_four_concurrent_chats_are_answered_together_not_queued(local_manager):
    """With the default n_parallel, every chat of a gather gets tokens before any of them ends (one slot would queue them)."""
    events: list[tuple[str, int]] = []

    async def chat(pepper, index: int) -> None:
        async for chunk in pepper.chat.with_user(f"Count from {index} to {index + 40}.").stream():
            if chunk.content and ("first", index) not in events:
                events.append(("first", index))
            if chunk.finish_reason:
                events.append(("end", index))

    async with PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, seed=1, max_tokens=40) as pepper:
        await asyncio.gather(*(chat(pepper, i) for i in range(4)))
    first_end = min(position for position, (kind, _) in enumerate(events) if kind == "end")
    assert sorted(i for kind, i in events[:first_end] if kind == "first") == [0, 1, 2, 3], events


@pytest.mark.parametrize("value", [0, -1])
def test_a_bad_n_parallel_names_the_setting(local_manager, value):
    with pytest.raises(ConfigError, match=r"llm/local: n_parallel=.* must be a whole number >= 1"):
        PepperPy(plugin_manager=local_manager).with_llm("local", n_parallel=value)


async def test_chats_do_not_hold_the_loops_default_executor(local_manager):
    """Chats run on threads of their own: with a one-thread default executor, 4 chats still run at once and a
    to_thread() call answers while they generate (through that executor they would queue, and so would it).
    Run on a loop of its own (in a thread), so that the session's loop keeps its executor."""
    from concurrent.futures import ThreadPoolExecutor

    events: list[tuple[str, int]] = []

    async def chat(pepper, index: int) -> None:
        async for chunk in pepper.chat.with_user(f"Count from {index} to {index + 40}.").stream():
            if chunk.content and ("first", index) not in events:
                events.append(("first", index))
                if index == 3:
                    events.append(("to_thread", await asyncio.to_thread(lambda: index)))
            if chunk.finish_reason:
                events.append(("end", index))

    async def body() -> None:
        asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(1))
        async with PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, seed=1, max_tokens=40) as pepper:
            await asyncio.gather(*(chat(pepper, i) for i in range(4)))

    await asyncio.to_thread(asyncio.run, body())
    first_end = min(position for position, (kind, _) in enumerate(events) if kind == "end")
    assert sorted(i for kind, i in events[:first_end] if kind == "first") == [0, 1, 2, 3], events
    assert ("to_thread", 3) in events[:first_end], events
