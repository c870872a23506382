"""Issue 20: PepperPy's non-streamed call over raw httpx in CPU instructions (valgrind), the figure a
loaded machine does not move.

Each client runs in its own process under ``valgrind --tool=cachegrind`` with the same answer
served from memory (memory_clients.py): the instructions of CALLS calls less those of none,
per call. Sequential calls, and calls 64 at a time (where httpcore's pool does more per call;
its keep-alive expiry reads the clock, so that row moves a few percent between runs). In the
``http`` section's venv (.bench/venv: no OpenTelemetry, so no hook at all). Skipped when
valgrind is not installed.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from scripts.bench.common import table
from scripts.bench.remote_llm import ensure_bench_venv

CALLS = 1280


def instructions(python: Path, client: str, mode: str, calls: int) -> int:
    script = str(Path(__file__).with_name("memory_clients.py"))
    run = subprocess.run(
        ["valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null",
         str(python), script, client, mode, str(calls)],
        check=True, capture_output=True, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    found = re.search(r"I\s+refs:\s+([\d,]+)", run.stderr)
    assert found, run.stderr[-2000:]
    return int(found.group(1).replace(",", ""))


def per_call(python: Path, client: str, mode: str) -> float:
    return (instructions(python, client, mode, CALLS) - instructions(python, client, mode, 0)) / CALLS


def main() -> None:
    if shutil.which("valgrind") is None:
        print("valgrind is not installed: skipped")
        return
    python = ensure_bench_venv()
    rows = []
    for mode, label, target in (("seq", "one call at a time", "<= 1.05x"), ("concurrent", "64 at a time", "<= 1.05x")):
        raw, ours = per_call(python, "raw", mode), per_call(python, "PepperPy", mode)
        rows.append((label, f"{raw / 1000:.0f}k", f"{ours / 1000:.0f}k", f"{ours / raw:.3f}x", target))
    table(
        f"Instructions per non-streamed call over an in-memory network (valgrind; {CALLS} calls less none)",
        rows, ("calls", "raw httpx", "PepperPy", "PepperPy / raw", "target"),
    )


__all__ = ["main"]
