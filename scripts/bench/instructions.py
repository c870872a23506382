"""Issues 20 and 21: PepperPy's non-streamed call over raw httpx in CPU instructions (valgrind), the figure a
loaded machine does not move.

Each client runs in its own process under ``valgrind --tool=cachegrind`` with the same answer
served from memory (memory_clients.py): the instructions of CALLS calls less those of none,
per call. Raw httpx does what a user of it writes for PepperPy's result: builds the body, POSTs
it, parses the JSON, takes the text and the usage. For Chat Completions a third client does the
same through httpx's transport with no ``AsyncClient``, as PepperPy's edge does, so that what
PepperPy saves by skipping httpx's client layer is told apart from its own cost. Three wire formats (Chat Completions, the
Responses API, Gemini), one call at a time; and Chat Completions 64 calls at a time (where
httpcore's pool does more per call; its keep-alive expiry reads the clock, so that row moves a
few percent between runs); and Chat Completions streams of 2,000 chunks, per chunk (read from memory in
64 KiB pieces, as from a socket). In the ``http`` section's venv (.bench/venv: no OpenTelemetry, so
no hook at all). Two valgrind runs at a time; skipped when valgrind is not installed.

Then the same calls in wall-clock and CPU time on the local stub (latency_pairs.py: interleaved pairs of 100
sequential calls each, the median of the pairs' ratios).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from scripts.bench.common import table
from scripts.bench.remote_llm import STREAM_CHUNKS, ensure_bench_venv, start_stub

CALLS = 640
STREAMS, CHUNKS_PER_STREAM = 4, 2000  # the stream row: per chunk of STREAMS streams (memory_clients.STREAM_CHUNKS)
ROWS = (  # (wire format, mode, label)
    ("chat", "seq", "Chat Completions, one call at a time"),
    ("responses", "seq", "Responses API, one call at a time"),
    ("gemini", "seq", "Gemini, one call at a time"),
    ("chat", "concurrent", "Chat Completions, 64 at a time"),
    ("chat", "stream", f"Chat Completions stream, per chunk ({CHUNKS_PER_STREAM:,}-chunk streams, no hooks)"),
)


def instructions(python: Path, client: str, mode: str, calls: int, wire: str) -> int:
    script = str(Path(__file__).with_name("memory_clients.py"))
    run = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         str(python), script, client, mode, str(calls), wire],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    assert found, run.stderr[-2000:]
    return int(found.group(1).replace(",", ""))


def main() -> None:
    python = ensure_bench_venv()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: instruction counts skipped")
    else:
        instruction_table(python)
    latency_table(python)


def instruction_table(python: Path) -> None:
    def units(mode: str) -> tuple[int, int]:
        """(calls or streams run, calls or chunks they make)"""
        return (STREAMS, STREAMS * CHUNKS_PER_STREAM) if mode == "stream" else (CALLS, CALLS)

    runs = [(client, mode, calls, wire) for wire, mode, _ in ROWS for client in ("raw", "PepperPy") for calls in (units(mode)[0], 0)]
    runs += [("transport", mode, calls, "chat") for mode in ("seq", "concurrent") for calls in (CALLS, 0)]
    with ThreadPoolExecutor(2) as pool:
        counts = dict(zip(runs, pool.map(lambda run: instructions(python, *run), runs)))

    def per_call(client: str, mode: str, wire: str) -> float:
        calls, made = units(mode)
        return (counts[client, mode, calls, wire] - counts[client, mode, 0, wire]) / made

    rows = []
    for wire, mode, label in ROWS:
        raw, ours = per_call("raw", mode, wire), per_call("PepperPy", mode, wire)
        floor = per_call("transport", mode, wire) if wire == "chat" and mode != "stream" else None
        target = "<= 1.15x" if mode == "stream" else "<= 1.05x"
        rows.append((
            label, f"{raw / 1000:.0f}k", "-" if floor is None else f"{floor / 1000:.0f}k", f"{ours / 1000:.0f}k",
            f"{ours / raw:.3f}x", "-" if floor is None else f"{ours / floor:.3f}x", target,
        ))
    table(
        f"Instructions per call (per chunk for the stream) over an in-memory network (valgrind; {CALLS} calls, "
        f"{STREAMS} streams, less none)",
        rows, ("calls", "raw httpx", "raw httpx transport", "PepperPy", "PepperPy / raw httpx", "PepperPy / transport",
               "target (vs raw httpx)"),
    )
    print("PepperPy sends through httpx's transport, as the 'raw httpx transport' client does: the difference between "
          "the two raw columns is httpx.AsyncClient's own layer, which PepperPy skips; PepperPy / transport is "
          "PepperPy's own cost.")


def latency_table(python: Path) -> None:
    stub, base_url = start_stub(STREAM_CHUNKS)
    try:
        run = subprocess.run([str(python), str(Path(__file__).with_name("latency_pairs.py")), base_url.removesuffix("/v1")],
                             check=True, capture_output=True, text=True)
    finally:
        stub.kill()
        stub.wait()
    figures = json.loads(run.stdout.splitlines()[-1])

    def spread(ratios: list[float]) -> str:
        ratios, quarter = sorted(ratios), len(ratios) // 4
        return f"{statistics.median(ratios):.3f}x ({ratios[quarter]:.3f}-{ratios[-1 - quarter]:.3f})"

    labels = {"chat": "Chat Completions", "responses": "Responses API", "gemini": "Gemini"}
    rows = [(labels[wire], spread(f["wall"]), spread(f["cpu"]), "<= 1.05x") for wire, f in figures.items()]
    pairs = len(next(iter(figures.values()))["wall"])
    table(f"PepperPy / raw httpx per-call latency on a local stub ({pairs} interleaved pairs of 100 sequential calls)",
          rows, ("wire format", "wall clock: median (middle half)", "CPU time: median (middle half)", "target"))


__all__ = ["main"]
