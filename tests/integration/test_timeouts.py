"""Time limits: ``timeout`` is a deadline for a whole call, retries and slow bodies included; for a
stream it bounds the wait for the first chunk and every gap; an error says which limit was hit.

The remote cases run llm/openai and embeddings/openai against the local scripted server
(tests/servers/scripted.py), because no real server trickles a body, stalls a stream or
hangs on demand. Assertions check behaviour (how many requests the server saw, how much
of a body it had sent when the client hung up, which chunks arrived), never that
something was fast enough: the machines running these tests are noisy. The llm/local
cases run the real SmolLM2 model in llama.cpp (one slot, so a generation that did not
stop would hold up the next call), counting tokens with llama.cpp's own metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from contextlib import aclosing

import pytest

from pepperpy import PepperPy
from pepperpy.errors import LLMError, LLMTimeoutError, ProviderTimeoutError, RateLimitError
from tests.servers.scripted import Reply, chat_answer, chat_stream_events

pytestmark = pytest.mark.integration

WHOLE_CALL = r"\(the limit covers the whole call, retries and slow bodies included\)"
LOCAL_CALL = (
    r"\(the limit covers the whole call, a wait for a busy slot included\); "
    r"llama.cpp stops generating this answer, and nothing was sent anywhere; pass a larger timeout=\.\.\."
)
HANG = 30.0  # seconds the scripted server waits before answering: far past every timeout below


@pytest.fixture
async def pepper(remote_manager, scripted):
    """llm/openai on the scripted server with retries allowed, so tests can show they stop at the deadline."""
    pepper = PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=scripted.base_url, api_key="k", max_retries=2, retry_budget=30, timeout=5
    )
    async with pepper:
        yield pepper


def ask(pepper, **options):
    return pepper.chat.with_user("hi").with_options(**options)


async def until(condition, what: str, within: float = 10.0) -> None:
    """Wait for something the scripted server notices on its own thread (a hang-up); fail naming it."""
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, f"the scripted server never saw {what}"
        await asyncio.sleep(0.02)


# -- a whole answer: one deadline for the call ------------------------------------------------


async def test_a_body_trickled_byte_by_byte_is_cut_at_the_deadline(pepper, scripted):
    """httpx's read timeout is per read, so a body trickled one byte every 0.2 s never trips it;
    the whole-call deadline must. The answer would take more than a minute to arrive in full."""
    body = chat_answer("a complete answer that arrives one byte at a time " * 2)
    scripted.reset(Reply(json=body, trickle=0.2))
    with pytest.raises(LLMTimeoutError, match=rf"within timeout=1s {WHOLE_CALL}") as raised:
        await ask(pepper, timeout=1).generate()
    (request,) = scripted.requests
    sent_when_client_gave_up, size = request.sent, len(json.dumps(body).encode())
    assert isinstance(raised.value, LLMError) and isinstance(raised.value, ProviderTimeoutError)
    assert raised.value.retryable
    assert sent_when_client_gave_up < size, "the client waited for the whole trickled body"
    assert not request.finished
    await until(lambda: request.client_left, "the client hang up")
    assert request.sent < size


async def test_a_hanging_server_gets_one_request_and_the_error_names_the_whole_call(pepper, scripted):
    """Retries are allowed (max_retries=2, retry_budget=30) yet none may start past the call's deadline."""
    scripted.reset(*[Reply(delay=HANG, json=chat_answer("late"))] * 3)
    with pytest.raises(LLMTimeoutError, match=rf"no complete answer within timeout=0.5s {WHOLE_CALL}"):
        await ask(pepper, timeout=0.5).generate()
    assert len(scripted.requests) == 1


async def test_a_retry_counts_against_the_same_deadline(pepper, scripted):
    """A 500 is retried; the retry hangs; the call ends at the deadline of the first attempt, not of the retry."""
    scripted.reset(
        Reply(status=500, json={"error": {"message": "overloaded"}}), Reply(delay=HANG, json=chat_answer("late"))
    )
    with pytest.raises(LLMTimeoutError, match=rf"within timeout=3s {WHOLE_CALL}"):
        await ask(pepper, timeout=3).generate()
    assert len(scripted.requests) == 2


async def test_a_retry_after_beyond_the_timeout_is_not_waited_for_even_within_the_retry_budget(pepper, scripted):
    """retry_budget=30 would allow waiting 2 s; timeout=1 does not, so the 429 is raised at once."""
    scripted.reset(Reply(status=429, headers={"retry-after": "2"}, json={"error": {"message": "slow down"}}),
                   Reply(json=chat_answer("too late")))
    with pytest.raises(RateLimitError, match="slow down"):
        await ask(pepper, timeout=1).generate()
    assert len(scripted.requests) == 1


async def test_a_500_then_success_is_retried_within_the_timeout(pepper, scripted):
    scripted.reset(Reply(status=500, json={"error": {"message": "overloaded"}}), Reply(json=chat_answer("fine")))
    result = await ask(pepper, timeout=3).generate()
    assert result.content == "fine"
    assert len(scripted.requests) == 2


# -- a stream: first chunk and gaps, never the whole length -------------------------------------


def paced(pieces: list[str], gap: float) -> Reply:
    """A stream whose content chunks arrive ``gap`` seconds apart (event 0 is the role-only chunk)."""
    return Reply(events=chat_stream_events(pieces), pauses={index: gap for index in range(1, len(pieces) + 1)})


async def test_a_long_stream_with_short_gaps_is_not_cut(pepper, scripted):
    """Ten chunks 0.3 s apart take 3 s in all, three times the timeout; no single gap comes near it."""
    pieces = [f"piece{i} " for i in range(10)]
    scripted.reset(paced(pieces, 0.3))
    started = time.monotonic()
    chunks = [chunk async for chunk in ask(pepper, timeout=1).stream()]
    # A lower bound the server's own pauses guarantee, not a noisy threshold: the stream outlived its timeout.
    assert time.monotonic() - started > 1
    assert "".join(c.content for c in chunks) == "".join(pieces)
    assert chunks[-1].usage is not None and any(c.finish_reason == "stop" for c in chunks)
    (request,) = scripted.requests
    assert request.finished


async def test_a_stream_stalling_before_its_first_chunk_names_the_first_chunk(pepper, scripted):
    stalled = Reply(events=chat_stream_events(["never"]), pauses={0: 3})
    scripted.reset(stalled, Reply(events=chat_stream_events(["retried"])))
    received = []
    with pytest.raises(LLMTimeoutError, match=r"waited more than timeout=1s for the first chunk") as raised:
        async for chunk in ask(pepper, timeout=1).stream():
            received.append(chunk.content)
    assert received == []
    assert raised.value.retryable and isinstance(raised.value, LLMError)
    assert len(scripted.requests) == 1, "nothing may be retried once the first-chunk limit is hit"
    assert scripted.requests[0].sent == 0
    await until(lambda: scripted.requests[0].client_left, "the client hang up")


async def test_a_stream_stalling_midway_names_the_gap_and_keeps_the_chunks_received(pepper, scripted):
    scripted.reset(Reply(events=chat_stream_events(["one ", "two ", "three"]), pauses={3: 3}))
    received = []
    with pytest.raises(LLMTimeoutError, match=r"waited more than timeout=1s between two chunks") as raised:
        async for chunk in ask(pepper, timeout=1).stream():
            received.append(chunk.content)
    assert "".join(received) == "one two "
    assert not raised.value.retryable, "part of the answer was already delivered"
    assert len(scripted.requests) == 1
    await until(lambda: scripted.requests[0].client_left, "the client hang up")
    assert scripted.requests[0].sent == 3, "the server was still stalling when the client left"


# -- no per-call timeout: the provider's option is the deadline ---------------------------------


def test_remote_providers_default_to_a_bounded_timeout(remote_manager):
    pepper = PepperPy(plugin_manager=remote_manager).with_llm("openai", base_url="http://127.0.0.1:9/v1", api_key="k")
    assert pepper.llm.timeout == 60


async def test_the_timeout_option_is_the_deadline_of_calls_that_pass_none(remote_manager, scripted):
    scripted.reset(*[Reply(delay=HANG, json=chat_answer("late"))] * 3)
    pepper = PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=scripted.base_url, api_key="k", timeout=1, max_retries=2, retry_budget=30
    )
    async with pepper:
        with pytest.raises(LLMTimeoutError, match=rf"within timeout=1(\.0)?s {WHOLE_CALL}"):
            await pepper.chat.with_user("hi").generate()
        assert len(scripted.requests) == 1
        scripted.reset(Reply(events=chat_stream_events(["late"]), pauses={0: 3}))
        with pytest.raises(LLMTimeoutError, match=r"timeout=1(\.0)?s for the first chunk"):
            async for _ in pepper.chat.with_user("hi").stream():
                pass


# -- embeddings over HTTP ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "reply",
    [Reply(delay=HANG, json={"data": [{"index": 0, "embedding": [1.0]}]}),
     Reply(trickle=0.2, json={"data": [{"index": 0, "embedding": [1.0] * 50}], "model": "scripted"})],
    ids=["hang", "trickle"],
)
async def test_embeddings_respect_the_whole_call_deadline(remote_manager, scripted, reply):
    scripted.reset(reply, reply, reply)
    pepper = PepperPy(plugin_manager=remote_manager).with_embeddings(
        "openai", base_url=scripted.base_url, api_key="k", timeout=0.5, max_retries=2, retry_budget=30
    )
    async with pepper:
        with pytest.raises(ProviderTimeoutError, match=rf"within timeout=0.5s {WHOLE_CALL}") as raised:
            await pepper.provider("embeddings").embed(["some text"])
    assert not isinstance(raised.value, LLMError), "an embeddings failure is never an LLMError"
    (request,) = scripted.requests
    assert not request.finished


# -- llm/local: the real model in llama.cpp -----------------------------------------------------

STORY = "Write a very long story about a dragon."  # SmolLM2 (temperature 0, seed 7) runs it to max_tokens
LONG = 2000


@pytest.fixture(scope="module")
async def local(local_manager):
    """One slot (n_parallel=1): a generation that did not stop would hold up every later call."""
    pepper = PepperPy(plugin_manager=local_manager).with_llm(
        "local", temperature=0, seed=7, n_parallel=1, max_tokens=40
    )
    async with pepper:
        yield pepper


def predicted_tokens(pepper) -> int:
    """llama.cpp's own counter of generated tokens, from its Prometheus metrics text."""
    metrics = pepper.llm._server.handle_metrics()
    return int(float(re.search(r"^llamacpp:tokens_predicted_total (\S+)$", metrics, re.MULTILINE).group(1)))


async def capital(pepper, **options) -> str:
    chat = pepper.chat.with_user("What is the capital of France?").with_options(max_tokens=20, **options)
    return (await chat.generate()).content


async def test_local_generate_times_out_and_frees_its_slot(local):
    """A local model sends nothing anywhere: its timeout error says what became of the answer, not that a
    service may have processed it."""
    before = predicted_tokens(local)
    expected = rf"llm/local: no complete answer within timeout=0.3s {LOCAL_CALL}"
    with pytest.raises(LLMTimeoutError, match=expected) as raised:
        await local.chat.with_user(STORY).with_options(max_tokens=LONG, timeout=0.3).generate()
    assert "service" not in str(raised.value) and "may have been processed" not in str(raised.value)
    # With one slot, this call runs only once the timed-out generation has stopped.
    assert await capital(local)
    generated = predicted_tokens(local) - before
    assert generated < LONG / 2, f"the timed-out generation went on to {generated} tokens"


async def test_local_timeout_as_an_option(local_manager):
    pepper = PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, seed=7, n_parallel=1, timeout=0.3)
    async with pepper:
        with pytest.raises(LLMTimeoutError, match=r"within timeout=0.3s"):
            await pepper.chat.with_user(STORY).with_options(max_tokens=LONG).generate()
        assert await capital(pepper, timeout=600)  # a per-call timeout overrides the option


async def test_local_stream_left_early_frees_its_slot(local):
    before = predicted_tokens(local)
    received = 0
    async for chunk in local.chat.with_user(STORY).with_options(max_tokens=LONG).stream():
        received += bool(chunk.content)
        if received == 3:
            break
    assert await capital(local)
    generated = predicted_tokens(local) - before
    assert generated < LONG / 2, f"the stream left early went on to {generated} tokens"


async def test_local_stream_first_chunk_limit(local):
    """A first chunk within a millisecond is impossible: llama.cpp must first read the prompt."""
    before = predicted_tokens(local)
    with pytest.raises(LLMTimeoutError, match=r"timeout=0.001s for the first chunk"):
        async for _ in local.chat.with_user(STORY).with_options(max_tokens=LONG, timeout=0.001).stream():
            pass
    assert await capital(local)
    assert predicted_tokens(local) - before < LONG / 2


async def test_local_call_waiting_for_the_busy_slot_gives_up_at_its_deadline(local):
    """With one slot, a second call waits inside llama.cpp, which calls it back only once the first is done;
    its timeout must end it at the deadline all the same, not when llama.cpp gets round to it."""
    started = asyncio.Event()

    async def consume() -> None:
        async with aclosing(local.chat.with_user(STORY).with_options(max_tokens=LONG).stream()) as chunks:
            async for chunk in chunks:
                if chunk.content:
                    started.set()

    running = asyncio.create_task(consume())
    try:
        await started.wait()  # the first call holds the slot, generating up to LONG tokens
        with pytest.raises(LLMTimeoutError, match=r"within timeout=0.3s"):
            await local.chat.with_user("What is 2 + 2?").with_options(timeout=0.3).generate()
        assert not running.done(), "the second call raised only after the first had finished"
    finally:
        running.cancel()
        await asyncio.gather(running, return_exceptions=True)
    assert await capital(local)
