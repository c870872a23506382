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

BENCH_VENV = ROOT / ".bench" / "venv"
STREAM_CHUNKS = 100
LONG_CHUNKS = 2000  # the cost per chunk is read on streams this long
ROUNDS = 3  # raw httpx and PepperPy alternate this many times; their ratios are per round


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
    stubs = []
    try:
        stub, base_url = start_stub(STREAM_CHUNKS)
        stubs.append(stub)
        stub, long_url = start_stub(LONG_CHUNKS)
        stubs.append(stub)
        run = subprocess.run(
            [str(python), str(Path(__file__).with_name("http_clients.py")), base_url, str(STREAM_CHUNKS), long_url,
             str(LONG_CHUNKS), str(ROUNDS)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )
    finally:
        for stub in stubs:
            stub.kill()
            stub.wait()
    results = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
    raw = next(r for r in results if r["client"] == "raw httpx")
    rows = []
    for r in results:
        if r["client"] in ("raw httpx", "PepperPy") and r["round"] != 0:
            continue
        per_chunk = (r["stream_ms"] - r["ttfc_ms"]) / (STREAM_CHUNKS - 1)
        rows.append((
            r["client"],
            f"{r['mean_ms']:.3f} ms ({r['mean_ms'] / raw['mean_ms']:.2f}x)",
            f"{r['p99_ms']:.3f} ms ({r['p99_ms'] / raw['p99_ms']:.2f}x)",
            f"{r['throughput']:.0f}/s ({r['throughput'] / raw['throughput']:.2f}x)",
            f"{r['ttfc_ms']:.3f} ms ({r['ttfc_ms'] / raw['ttfc_ms']:.2f}x)",
            f"{per_chunk * 1000:.1f} us",
            f"{r['long_chunk_us']:.1f} us ({r['long_chunk_us'] / raw['long_chunk_us']:.2f}x)",
        ))
    table(
        f"OpenAI-compatible calls on a local stub (1,000 sequential; 3,000 at 64 concurrent; {STREAM_CHUNKS}-chunk "
        f"streams; per chunk also on {LONG_CHUNKS}-chunk streams); round 1 of raw httpx and PepperPy",
        rows, ("client", "mean latency", "p99 latency", "throughput", "first chunk", "per chunk", f"per chunk ({LONG_CHUNKS})"),
    )
    print("target: PepperPy <= 1.10x raw httpx mean latency, >= 0.90x throughput, <= 1.10x first chunk, <= 0.05 ms per chunk")
    ratio_table(results)


def ratio_table(results: list[dict]) -> None:
    """PepperPy over raw httpx per round (each PepperPy run right after its raw httpx run): median and range."""
    raw = {r["round"]: r for r in results if r["client"] == "raw httpx"}
    ours = {r["round"]: r for r in results if r["client"] == "PepperPy"}
    figures = (
        (f"stream, per chunk ({LONG_CHUNKS}-chunk stream, no hooks)", "long_chunk_us", "<= 1.15x"),
        ("per-call latency, mean", "mean_ms", "<= 1.05x"),
        ("throughput, 64 concurrent", "throughput", ">= 0.95x"),
    )
    rows = []
    for label, key, target in figures:
        ratios = sorted(ours[n][key] / raw[n][key] for n in sorted(raw) if n in ours)
        raw_values = [f"{raw[n][key]:.3g}" for n in sorted(raw)]
        rows.append((label, f"{statistics.median(ratios):.3f}x", f"{ratios[0]:.3f}-{ratios[-1]:.3f}x",
                     ", ".join(raw_values), target))
    table(
        f"PepperPy / raw httpx, {len(raw)} alternating rounds in this run (median and range of the per-round ratios)",
        rows, ("figure", "median ratio", "range", "raw httpx per round", "target"),
    )
