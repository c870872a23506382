"""Small helpers shared by the benchmark modules: timing, medians, tables, plugin folders."""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]


def median_seconds(action: Callable[[], Any], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


def python_seconds(code: str, repeat: int, env: dict[str, str] | None = None) -> float:
    """Median wall time of ``python -c code`` in a fresh interpreter."""
    return median_seconds(lambda: subprocess.run([sys.executable, "-c", code], check=True, env=env), repeat)


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms" if seconds < 1 else f"{seconds:.2f} s"


def table(title: str, rows: list[tuple[str, ...]], header: tuple[str, ...]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    print(f"\n## {title}")
    for row in [header, tuple("-" * w for w in widths), *rows]:
        print("| " + " | ".join(str(cell).ljust(width) for cell, width in zip(row, widths)) + " |")


def write_plugin(folder: Path, name: str, requirements: str = "", category: str = "llm") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    manifest = {
        "name": name, "version": "0.1.0", "category": category, "provider_name": name,
        "description": f"benchmark plugin {name}", "entry_point": "provider:BenchLLM", "author": "bench",
        "pepperpy_compatibility": ">=0.1.0",
    }
    (folder / "plugin.json").write_text(json.dumps(manifest))
    (folder / "provider.py").write_text(
        "from pepperpy.llm import GenerationResult, LLMProvider\n\n\n"
        "class BenchLLM(LLMProvider):\n"
        "    async def generate(self, messages, **options):\n"
        "        return GenerationResult(content='')\n"
    )
    if requirements:
        (folder / "requirements.txt").write_text(requirements)
    return folder
