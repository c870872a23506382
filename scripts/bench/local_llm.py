"""Issue 4 figures: llm/local through PepperPy vs xllamacpp called directly, load time, cold with_llm("local")."""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from scripts.bench.common import ms, table

PROMPT = [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Tell me about the history of Paris."}]
SETTINGS = {"temperature": 0, "seed": 1, "max_tokens": 128}
ROUNDS = 7


def direct_stream(server) -> tuple[float, float]:
    """(time to first token, tokens/s) for one streamed request made straight to xllamacpp."""
    started = time.perf_counter()
    first: list[float] = []
    usage: list[dict] = []

    def on_chunk(chunk: dict) -> bool:
        if not first and chunk.get("choices") and (chunk["choices"][0].get("delta") or {}).get("content"):
            first.append(time.perf_counter())
        if chunk.get("usage"):
            usage.append(chunk["usage"])
        return False

    request = {"messages": PROMPT, **SETTINGS, "stream": True, "stream_options": {"include_usage": True}}
    done = threading.Event()

    def run() -> None:
        server.handle_chat_completions(request, on_chunk)
        done.set()

    threading.Thread(target=run).start()  # the same worker-thread shape PepperPy uses
    done.wait()
    elapsed = time.perf_counter() - started
    return first[0] - started, usage[-1]["completion_tokens"] / elapsed


async def pepperpy_stream(pepper) -> tuple[float, float]:
    from pepperpy.llm import Message

    messages = [Message(role=m["role"], content=m["content"]) for m in PROMPT]
    started = time.perf_counter()
    first = None
    tokens = 0
    async for chunk in pepper.llm.generate_stream(messages, **SETTINGS):
        if first is None and chunk.content:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first - started, tokens / (time.perf_counter() - started)


async def compare(pepper) -> None:
    import xllamacpp

    started = time.perf_counter()
    await pepper.__aenter__()
    pepperpy_load = time.perf_counter() - started
    model_path = str(sys.modules[type(pepper.llm).__module__].default_model_path())
    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.n_ctx = 2048
    params.cpuparams.n_threads = os.cpu_count() or 1
    params.verbosity = -1
    started = time.perf_counter()
    server = xllamacpp.Server(params)
    direct_load = time.perf_counter() - started
    direct_stream(server)  # warm-up
    await pepperpy_stream(pepper)
    direct, through = [], []
    for _ in range(ROUNDS):  # alternate so that machine noise hits both alike
        direct.append(direct_stream(server))
        through.append(await pepperpy_stream(pepper))
    await pepper.aclose()
    d_ttft = statistics.median(t for t, _ in direct)
    p_ttft = statistics.median(t for t, _ in through)
    d_tps = statistics.median(r for _, r in direct)
    p_tps = statistics.median(r for _, r in through)
    rows = [
        ("tokens/s (128 tokens, median of 7)", f"{d_tps:.1f}", f"{p_tps:.1f}", f"{p_tps / d_tps:.3f}x"),
        ("time to first token", ms(d_ttft), ms(p_ttft), f"+{(p_ttft - d_ttft) * 1000:.2f} ms"),
        ("model load", ms(direct_load), ms(pepperpy_load), f"{pepperpy_load / direct_load:.2f}x"),
    ]
    table("llm/local (SmolLM2-135M Q4_1) vs xllamacpp directly", rows, ("figure", "xllamacpp", "PepperPy", "ratio / overhead"))
    print("target: tokens/s >= 0.95x direct, first-token overhead < 5 ms")


def cold_with_llm() -> None:
    code = "from pepperpy import PepperPy; PepperPy().with_llm('local')"
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "PEPPERPY_HOME": home}
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=home)
        cold = time.perf_counter() - started
        started = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=home)
        warm = time.perf_counter() - started
    rows = [("fresh PEPPERPY_HOME (uv install of xllamacpp + model package, uv cache warm)", ms(cold)), ("same home again (fast path)", ms(warm))]
    table("cold `with_llm(\"local\")` in a new process", rows, ("run", "time"))


def main() -> None:
    from pepperpy import PepperPy

    # Outside a running loop, with_llm installs the plugin now and puts its env dir on
    # sys.path (inside one it would defer the install to the first open).
    pepper = PepperPy().with_llm("local", **SETTINGS)
    asyncio.run(compare(pepper))
    cold_with_llm()
