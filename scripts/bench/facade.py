"""Facade figures: opening and closing a PepperPy with an HTTP provider; sync path vs async path.

Opening and closing never connects (the provider only takes a pooled httpx client), so
the base URLs point at a closed port and no request is made; the https one is where a
per-client SSL context would show.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scripts.bench.common import ms, table

OPEN_CLOSE_ROUNDS = 300
CALLS = 5000
URLS = {"https": "https://127.0.0.1:9/v1", "http": "http://127.0.0.1:9/v1"}


async def _median(action: Callable[[], Awaitable[Any]], repeat: int, warm: int = 10) -> float:
    for _ in range(warm):
        await action()
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        await action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def open_close_figures() -> dict[str, float]:
    import httpx

    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager()
    shared_ssl = httpx.create_ssl_context()
    figures: dict[str, float] = {}

    async def fresh_client() -> None:
        await httpx.AsyncClient().aclose()

    async def client_with_shared_ssl() -> None:
        await httpx.AsyncClient(base_url=URLS["https"], verify=shared_ssl).aclose()

    figures["httpx.AsyncClient() (own SSL context)"] = await _median(fresh_client, 50, warm=3)
    figures["httpx.AsyncClient(verify=<shared SSL context>)"] = await _median(client_with_shared_ssl, OPEN_CLOSE_ROUNDS)

    for scheme, url in URLS.items():

        async def open_close(url: str = url) -> None:
            async with PepperPy(plugin_manager=manager).with_llm("openai", base_url=url, api_key="k", model="m"):
                pass

        figures[f"PepperPy(...).with_llm(\"openai\", {scheme}) open+close"] = await _median(open_close, OPEN_CLOSE_ROUNDS)

    configured = PepperPy(plugin_manager=manager).with_llm("openai", base_url=URLS["https"], api_key="k", model="m")

    async def reopen() -> None:
        async with configured:
            pass

    figures["one configured PepperPy (https): async with again"] = await _median(reopen, OPEN_CLOSE_ROUNDS)

    async with configured:
        figures["reusing one open PepperPy: await pepper.ready(\"llm\")"] = await _median(
            lambda: configured.ready("llm"), OPEN_CLOSE_ROUNDS
        )
    return figures


def _time(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us" if seconds < 1e-4 else ms(seconds)


def open_close() -> None:
    figures = asyncio.run(open_close_figures())
    baseline = figures["httpx.AsyncClient(verify=<shared SSL context>)"]
    fresh = figures["httpx.AsyncClient() (own SSL context)"]
    rows = [(label, _time(seconds), f"{seconds / baseline:.2f}x", f"{seconds / fresh:.3f}x") for label, seconds in figures.items()]
    table(
        f"open and close a PepperPy with llm/openai (no request made; median of {OPEN_CLOSE_ROUNDS})",
        rows, ("what", "per open/close", "vs client w/ shared SSL", "vs httpx.AsyncClient()"),
    )
    print("target: PepperPy open+close < 2 ms (was 17.5 ms, 16 ms of it building an SSL context)")


def _mock_pepper() -> Any:
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager

    return PepperPy(plugin_manager=PluginManager()).with_llm("mock")


def sync_rate(calls: int) -> float:
    pepper = _mock_pepper()
    try:
        for _ in range(100):
            pepper.chat.with_user("hi").generate_sync()
        started = time.perf_counter()
        for _ in range(calls):
            pepper.chat.with_user("hi").generate_sync()
        return calls / (time.perf_counter() - started)
    finally:
        pepper.close()


async def async_rate(calls: int) -> float:
    pepper = _mock_pepper()
    for _ in range(100):
        await pepper.chat.with_user("hi").generate()
    started = time.perf_counter()
    for _ in range(calls):
        await pepper.chat.with_user("hi").generate()
    rate = calls / (time.perf_counter() - started)
    await pepper.aclose()
    return rate


async def provider_rate(calls: int) -> float:
    provider = _mock_pepper().llm
    async with provider:
        for _ in range(100):
            await provider.generate("hi")
        started = time.perf_counter()
        for _ in range(calls):
            await provider.generate("hi")
        return calls / (time.perf_counter() - started)


def thread_hop_rate(calls: int) -> float:
    """``run_sync`` of a coroutine that does nothing: the round trip to the private loop alone."""

    async def nothing() -> None:
        pass

    pepper = _mock_pepper()
    try:
        for _ in range(100):
            pepper.run_sync(nothing())
        started = time.perf_counter()
        for _ in range(calls):
            pepper.run_sync(nothing())
        return calls / (time.perf_counter() - started)
    finally:
        pepper.close()


def sync_vs_async(rounds: int = 3) -> None:
    sync, asyn, direct, hop = [], [], [], []
    for _ in range(rounds):  # alternate so that machine noise hits both alike
        sync.append(sync_rate(CALLS))
        asyn.append(asyncio.run(async_rate(CALLS)))
        direct.append(asyncio.run(provider_rate(CALLS)))
        hop.append(thread_hop_rate(CALLS))
    s, a, d, h = (statistics.median(x) for x in (sync, asyn, direct, hop))
    rows = [
        ("`pepper.chat.with_user(\"hi\").generate_sync()`", f"{s:,.0f}/s", f"{1e6 / s:.1f} us", f"{s / a:.2f}x"),
        ("`await pepper.chat.with_user(\"hi\").generate()` (one asyncio.run)", f"{a:,.0f}/s", f"{1e6 / a:.1f} us", "1.00x"),
        ("`await provider.generate(\"hi\")` on the open provider", f"{d:,.0f}/s", f"{1e6 / d:.1f} us", f"{d / a:.2f}x"),
        ("`pepper.run_sync(<coroutine doing nothing>)`: the thread round trip", f"{h:,.0f}/s", f"{1e6 / h:.1f} us", ""),
    ]
    table(f"llm/mock calls, sync path vs async path ({CALLS:,} calls in a loop, median of {rounds} runs)", rows,
          ("path", "calls/s", "per call", "vs async path"))


def main() -> None:
    open_close()
    sync_vs_async()
