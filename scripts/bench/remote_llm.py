"""Issue 5 figures: PepperPy's OpenAI-compatible provider vs raw httpx, the openai SDK and LiteLLM, on a local stub.

The stub runs in its own process; the clients run one after another in a benchmark venv
(.bench/venv: PepperPy plus openai and litellm, which PepperPy itself never depends on).
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

from scripts.bench.common import ROOT, table
from scripts.bench.http_clients import PAIR_STREAMS  # that file runs in the bench venv; its top imports only the stdlib

BENCH_VENV = ROOT / ".bench" / "venv"
STREAM_CHUNKS = 100
LONG_CHUNKS = 2000  # the ratio per chunk is read on streams this long


def ensure_bench_venv() -> Path:
    from uv import find_uv_bin

    python = BENCH_VENV / "bin" / "python"
    if not python.exists():
        subprocess.run([find_uv_bin(), "venv", "-q", "--python", sys.executable, str(BENCH_VENV)], check=True)
    subprocess.run([find_uv_bin(), "pip", "install", "-q", "--python", str(python), "-e", str(ROOT), "openai", "litellm"], check=True)
    return python


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_stub(chunks: int) -> tuple[subprocess.Popen[str], str]:
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(Path(__file__).with_name("stub_server.py")), str(port), str(chunks)], stdout=subprocess.PIPE, text=True)
    assert stub.stdout is not None and stub.stdout.readline().strip() == "ready"
    return stub, f"http://127.0.0.1:{port}/v1"


def main() -> None:
    python = ensure_bench_venv()
    clients = str(Path(__file__).with_name("http_clients.py"))
    stubs = []
    try:
        stub, base_url = start_stub(STREAM_CHUNKS)
        stubs.append(stub)
        stub, long_url = start_stub(LONG_CHUNKS)
        stubs.append(stub)
        run = subprocess.run([str(python), clients, base_url, str(STREAM_CHUNKS)], check=True, capture_output=True, text=True, cwd=ROOT)
        pairs = subprocess.run(
            [str(python), clients, "paired", base_url, long_url, str(LONG_CHUNKS)], check=True, capture_output=True, text=True, cwd=ROOT,
        )
    finally:
        for stub in stubs:
            stub.kill()
            stub.wait()
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    raw = results[0]
    rows = []
    for r in results:
        per_chunk = (r["stream_ms"] - r["ttfc_ms"]) / (STREAM_CHUNKS - 1)
        rows.append((
            r["client"],
            f"{r['mean_ms']:.3f} ms ({r['mean_ms'] / raw['mean_ms']:.2f}x)",
            f"{r['p99_ms']:.3f} ms ({r['p99_ms'] / raw['p99_ms']:.2f}x)",
            f"{r['throughput']:.0f}/s ({r['throughput'] / raw['throughput']:.2f}x)",
            f"{r['ttfc_ms']:.3f} ms ({r['ttfc_ms'] / raw['ttfc_ms']:.2f}x)",
            f"{per_chunk * 1000:.1f} us",
        ))
    table(
        f"OpenAI-compatible calls on a local stub (1,000 sequential; 3,000 at 64 concurrent; {STREAM_CHUNKS}-chunk streams)",
        rows, ("client", "mean latency", "p99 latency", "throughput", "first chunk", "per chunk"),
    )
    print("target: PepperPy <= 1.10x raw httpx mean latency, >= 0.90x throughput, <= 1.10x first chunk, <= 0.05 ms per chunk")
    ratio_table(json.loads(pairs.stdout.splitlines()[-1]))


def ratio_table(figures: dict[str, list[float]]) -> None:
    """PepperPy over raw httpx from pairs measured back to back: the median ratio and the middle half's range,
    in wall-clock time and in this process's CPU time (the steadier of the two on a loaded machine)."""

    def spread(ratios: list[float]) -> str:
        ratios, quarter = sorted(ratios), len(ratios) // 4
        return f"{statistics.median(ratios):.3f}x ({ratios[quarter]:.3f}-{ratios[-1 - quarter]:.3f})"

    rows = [
        (label, spread(figures[key]), spread(figures[f"{key}_cpu"]), target)
        for label, key, target in (
            (f"stream, per chunk ({LONG_CHUNKS}-chunk streams, no hooks; per pair {PAIR_STREAMS} streams each, in "
             "turns, the fastest of each side)", "stream_chunk", "<= 1.15x"),
            ("per-call latency, mean", "latency", "<= 1.05x"),
            ("throughput, 64 concurrent", "throughput", ">= 0.95x"),
        )
    ]
    raw_us = sorted(figures["raw_chunk_us"])
    table(
        f"PepperPy / raw httpx, {len(raw_us)} pairs measured back to back (raw httpx per chunk: "
        f"{raw_us[0]:.1f}-{raw_us[-1]:.1f} us over the pairs)",
        rows, ("figure", "wall clock: median (middle half)", "CPU time: median (middle half)", "target"),
    )
