"""Issue 4 and 23 figures: llm/local through PepperPy vs xllamacpp called directly, open time, chats at once, cold with_llm("local")."""

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
OPEN_ROUNDS = 3
CONCURRENT_SETTINGS = {"temperature": 0, "seed": 1, "max_tokens": 64}
CONCURRENT_ROUNDS = 5


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


async def pepperpy_stream(pepper, settings: dict | None = None) -> tuple[float, float, int]:
    """(time to first token, tokens/s, tokens) for one stream through PepperPy."""
    from pepperpy.llm import Message

    messages = [Message(role=m["role"], content=m["content"]) for m in PROMPT]
    started = time.perf_counter()
    first = None
    tokens = 0
    async for chunk in pepper.llm.generate_stream(messages, **(settings or SETTINGS)):
        if first is None and chunk.content:
            first = time.perf_counter()
        if chunk.usage:
            tokens = chunk.usage.completion_tokens
    return first - started, tokens / (time.perf_counter() - started), tokens


def direct_params(xllamacpp, model_path: str, n_parallel: int):
    """The llama.cpp settings llm/local uses, set straight on xllamacpp."""
    params = xllamacpp.CommonParams()
    params.model.path = model_path
    params.n_parallel = n_parallel
    params.n_ctx = 2048 * n_parallel
    params.cpuparams.n_threads = os.cpu_count() or 1
    params.verbosity = -1
    params.endpoint_metrics = True
    return params


def close_direct(server) -> None:
    server.handle_metrics()  # llama.cpp's loop is running: its destructor can stop it (issue 19)


async def open_times(pepper, xllamacpp, model_path: str) -> tuple[float, float, float]:
    """(first open in the process, PepperPy open, xllamacpp alone): the last two alternated, medians.

    The first open in a process pays for reading the model file and llama.cpp's one-time setup; it is
    measured apart so that neither side of the comparison is billed for it (issue 4's table was: PepperPy
    opened first, cold, and xllamacpp second, warm, with the import of xllamacpp on PepperPy's side).
    """
    started = time.perf_counter()
    close_direct(xllamacpp.Server(direct_params(xllamacpp, model_path, pepper.llm.n_parallel)))
    first = time.perf_counter() - started
    through, direct = [], []
    for _ in range(OPEN_ROUNDS):
        started = time.perf_counter()
        await pepper.__aenter__()
        through.append(time.perf_counter() - started)
        await pepper.aclose()
        started = time.perf_counter()
        server = xllamacpp.Server(direct_params(xllamacpp, model_path, pepper.llm.n_parallel))
        server.handle_metrics()  # PepperPy waits for this too before an open returns
        direct.append(time.perf_counter() - started)
        del server
    return first, statistics.median(through), statistics.median(direct)


async def compare(pepper) -> None:
    import xllamacpp

    model_path = str(sys.modules[type(pepper.llm).__module__].default_model_path())
    first, pepperpy_load, direct_load = await open_times(pepper, xllamacpp, model_path)
    await pepper.__aenter__()
    server = xllamacpp.Server(direct_params(xllamacpp, model_path, pepper.llm.n_parallel))
    direct_stream(server)  # warm-up
    await pepperpy_stream(pepper)
    direct, through = [], []
    for _ in range(ROUNDS):  # alternate so that machine noise hits both alike
        direct.append(direct_stream(server))
        through.append((await pepperpy_stream(pepper))[:2])
    close_direct(server)
    del server
    await pepper.aclose()
    d_ttft = statistics.median(t for t, _ in direct)
    p_ttft = statistics.median(t for t, _ in through)
    d_tps = statistics.median(r for _, r in direct)
    p_tps = statistics.median(r for _, r in through)
    rows = [
        (f"tokens/s (128 tokens, median of {ROUNDS})", f"{d_tps:.1f}", f"{p_tps:.1f}", f"{p_tps / d_tps:.3f}x"),
        ("time to first token", ms(d_ttft), ms(p_ttft), f"+{(p_ttft - d_ttft) * 1000:.2f} ms"),
        (f"model open (median of {OPEN_ROUNDS}, alternated)", ms(direct_load), ms(pepperpy_load), f"{pepperpy_load / direct_load:.2f}x"),
        ("first open in the process (xllamacpp)", ms(first), "", ""),
    ]
    table("llm/local (SmolLM2-135M Q4_1) vs xllamacpp directly", rows, ("figure", "xllamacpp", "PepperPy", "ratio / overhead"))
    print("target: tokens/s >= 0.95x direct, first-token overhead < 5 ms, open <= 1.2x xllamacpp alone")


async def aggregate_rate(pepper, chats: int) -> tuple[float, float]:
    """(completion tokens per second, per CPU-second of this process) of ``chats`` streams gathered at once."""
    started, cpu_started = time.perf_counter(), time.process_time()
    results = await asyncio.gather(*(pepperpy_stream(pepper, CONCURRENT_SETTINGS) for _ in range(chats)))
    tokens = sum(tokens for _, _, tokens in results)
    return tokens / (time.perf_counter() - started), tokens / (time.process_time() - cpu_started)


def direct_aggregate_rate(server, chats: int) -> tuple[float, float]:
    """The same as aggregate_rate, straight to xllamacpp: one thread per request, as PepperPy does."""
    counts: list[int] = []
    request = {"messages": PROMPT, **CONCURRENT_SETTINGS, "stream": True, "stream_options": {"include_usage": True}}

    def on_chunk(chunk: dict) -> bool:
        if chunk.get("usage"):
            counts.append(chunk["usage"]["completion_tokens"])
        return False

    def run() -> None:
        server.handle_chat_completions(request, on_chunk)

    threads = [threading.Thread(target=run) for _ in range(chats)]
    started, cpu_started = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started), sum(counts) / (time.process_time() - cpu_started)


async def concurrency() -> None:
    """Aggregate tokens/s of 1, 2 and 4 concurrent chats: one slot (issue 4's default), n_parallel=4 (today's),
    and xllamacpp alone with n_parallel=4 (what llama.cpp gives without PepperPy), rounds alternated.

    Each configuration runs alone: opened, warmed up, measured and closed in turn. Two llama.cpp servers open
    in one process slow each other down even when one is idle (one chat on xllamacpp alone: 116.7 tokens/s,
    83.7 with a second server open beside it), which made one chat on 4 slots read 0.76x of one slot.
    """
    import xllamacpp

    from pepperpy import PepperPy

    samples: dict[tuple[str, int], list[tuple[float, float]]] = {}
    loads = [os.getloadavg()[0]]
    model_path = ""
    for _ in range(CONCURRENT_ROUNDS):
        for n_parallel in (1, 4):
            async with PepperPy().with_llm("local", n_parallel=n_parallel) as pepper:
                model_path = str(sys.modules[type(pepper.llm).__module__].default_model_path())
                await aggregate_rate(pepper, 1)  # warm-up
                for chats in (1, 2, 4):
                    samples.setdefault((f"n_parallel={n_parallel}", chats), []).append(await aggregate_rate(pepper, chats))
        server = xllamacpp.Server(direct_params(xllamacpp, model_path, 4))
        direct_aggregate_rate(server, 1)  # warm-up
        for chats in (1, 4):
            samples.setdefault(("xllamacpp alone, n_parallel=4", chats), []).append(direct_aggregate_rate(server, chats))
        close_direct(server)
        del server
        loads.append(os.getloadavg()[0])
    wall = {key: statistics.median(w for w, _ in s) for key, s in samples.items()}
    cpu = {key: statistics.median(c for _, c in s) for key, s in samples.items()}
    base, cpu_base = wall[("n_parallel=1", 1)], cpu[("n_parallel=1", 1)]
    rows = [
        (slots, str(chats), f"{wall[(slots, chats)]:.1f}", f"{wall[(slots, chats)] / base:.2f}x",
         f"{cpu[(slots, chats)]:.1f}", f"{cpu[(slots, chats)] / cpu_base:.2f}x")
        for slots, chats in samples
    ]
    table(
        f"llm/local, chats at once ({CONCURRENT_SETTINGS['max_tokens']} tokens each, median of {CONCURRENT_ROUNDS}, "
        f"load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores)",
        rows, ("slots", "chats at once", "aggregate tokens/s", "vs 1 chat on 1 slot", "tokens per CPU-second", "vs 1 chat on 1 slot"),
    )
    print("target: 4 chats >= 2x one at a time; 1 chat on n_parallel=4 >= 0.95x 1 chat on n_parallel=1")
    print("tokens per CPU-second: the work per token of this process (prompt included), less sensitive to other processes")


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
    asyncio.run(concurrency())
    cold_with_llm()
