"""The whole-call deadline an LLM ``generate`` enforces is recorded for the HTTP edge inside it
(pepperpy/_deadline.py): ``post_json`` arms no second timer under it, and only where the guard's fires first."""

from __future__ import annotations

import asyncio

import pytest

from pepperpy._deadline import enforced_by
from pepperpy.errors import LLMTimeoutError
from pepperpy.llm import GenerationResult, LLMProvider


class Probe(LLMProvider):
    """Reports, from inside its generate, what the HTTP edge would see for a post with ``post_timeout``."""

    timeout: float | None = 5.0
    post_timeout: float = 5.0

    async def generate(self, messages, **options):
        loop = asyncio.get_running_loop()
        here = enforced_by(loop.time() + self.post_timeout)
        other_task = await asyncio.create_task(self._enforced_in_a_new_task())
        return GenerationResult(content="", metadata={"here": here, "other_task": other_task})

    async def _enforced_in_a_new_task(self) -> bool:
        return enforced_by(asyncio.get_running_loop().time() + 3600)


async def probe(**config) -> dict:
    provider = Probe(**config)
    await provider.initialize()
    try:
        return (await provider.generate("hi")).metadata
    finally:
        await provider.cleanup()


async def test_a_post_inside_generate_with_the_same_timeout_relies_on_the_guards_deadline():
    seen = await probe(timeout=5.0, post_timeout=5.0)
    assert seen["here"] is True
    assert seen["other_task"] is False, "a task the call starts is not under the guard's scope: it keeps its own timer"


async def test_a_post_whose_own_deadline_comes_first_keeps_its_timer():
    assert (await probe(timeout=5.0, post_timeout=1.0))["here"] is False


async def test_without_a_timeout_nothing_is_recorded():
    assert (await probe(timeout=None))["here"] is False


async def test_outside_any_generate_nothing_is_recorded():
    assert enforced_by(asyncio.get_running_loop().time() + 3600) is False


async def test_the_record_ends_with_the_call_and_the_guard_still_raises_its_own_timeout():
    class Slow(Probe):
        async def generate(self, messages, **options):
            await asyncio.sleep(30)

    provider = Slow(timeout=0.05)
    await provider.initialize()
    try:
        with pytest.raises(LLMTimeoutError, match=r"within timeout=0.05s"):
            await provider.generate("hi")
        assert enforced_by(asyncio.get_running_loop().time() + 3600) is False
    finally:
        await provider.cleanup()


async def test_an_expired_deadline_leaves_the_task_uncancelled():
    """The guard's timer cancels the task to stop the call; once that became the LLMTimeoutError, the task is
    not left marked as cancelled (a later ``asyncio.timeout`` in it would misread its own expiry)."""
    class Slow(Probe):
        async def generate(self, messages, **options):
            await asyncio.sleep(30)

    provider = Slow(timeout=0.05)
    await provider.initialize()
    try:
        with pytest.raises(LLMTimeoutError):
            await provider.generate("hi")
        assert asyncio.current_task().cancelling() == 0
        async with asyncio.timeout(5):  # still usable: an inner await completes
            await asyncio.sleep(0)
    finally:
        await provider.cleanup()


async def test_a_cancel_from_outside_is_not_a_timeout():
    """Cancelling the caller's task during generate stays a CancelledError, not the guard's LLMTimeoutError."""
    class Slow(Probe):
        async def generate(self, messages, **options):
            await asyncio.sleep(30)

    provider = Slow(timeout=5.0)
    await provider.initialize()
    try:
        task = asyncio.create_task(provider.generate("hi"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    finally:
        await provider.cleanup()
