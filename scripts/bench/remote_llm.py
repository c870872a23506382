"""Issue 5 figures: PepperPy's OpenAI-compatible provider vs raw httpx, the openai SDK and LiteLLM, on a local stub.

The stub runs in its own process; the clients run one after another in a benchmark venv
(.bench/venv: PepperPy plus openai and litellm, which PepperPy itself never depends on).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from scripts.bench.common import ROOT, table

BENCH_VENV = ROOT / ".bench" / "venv"
STREAM_CHUNKS = 100


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


def main() -> None:
    python = ensure_bench_venv()
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(Path(__file__).with_name("stub_server.py")), str(port), str(STREAM_CHUNKS)], stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None and stub.stdout.readline().strip() == "ready"
        run = subprocess.run(
            [str(python), str(Path(__file__).with_name("http_clients.py")), f"http://127.0.0.1:{port}/v1", str(STREAM_CHUNKS)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )
    finally:
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
