"""PepperPy benchmarks. Every figure is printed next to a baseline measured in the same run.

Usage: .venv/bin/python scripts/bench.py [core] [local] [http] [instructions] [responses] [facade] [plugins] [reload] [rag] [rag-scale] [embeddings] [cli] [hooks] [calllog] [recording] [isolation] [gemini] [parts] [bedrock] [cost] [tools] [mcp] [loaders] [retrieval] [pgvector] [pgvector-1m] [installs]   (no argument: all but rag-scale and pgvector-1m)
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SECTIONS = {
    "core": "scripts.bench.core",
    "local": "scripts.bench.local_llm",
    "http": "scripts.bench.remote_llm",
    "instructions": "scripts.bench.instructions",
    "responses": "scripts.bench.responses_api",
    "facade": "scripts.bench.facade",
    "plugins": "scripts.bench.plugin_system",
    "rag": "scripts.bench.rag",
    "rag-scale": "scripts.bench.rag_scale",
    "embeddings": "scripts.bench.local_embeddings",
    "reload": "scripts.bench.hot_reload",
    "cli": "scripts.bench.cli",
    "templates": "scripts.bench.templates",
    "templates-instructions": "scripts.bench.templates:instructions",
    "hooks": "scripts.bench.hooks",
    "calllog": "scripts.bench.calllog",
    "recording": "scripts.bench.recording",
    "isolation": "scripts.bench.isolation",
    "gemini": "scripts.bench.gemini",
    "parts": "scripts.bench.parts",
    "bedrock": "scripts.bench.bedrock",
    "cost": "scripts.bench.cost",
    "mcp": "scripts.bench.mcp",
    "tools": "scripts.bench.tools",
    "loaders": "scripts.bench.loaders",
    "retrieval": "scripts.bench.retrieval",
    "pgvector": "scripts.bench.pgvector",
    "pgvector-1m": "scripts.bench.pgvector:main_1m",
    "installs": "scripts.bench.installs",
}
OPTIONAL = {"pgvector-1m", "rag-scale", "templates-instructions"}  # long (1M chunks; valgrind): only when named


def main(names: list[str]) -> None:
    unknown = [n for n in names if n not in SECTIONS]
    if unknown:
        raise SystemExit(f"unknown section(s) {unknown}; choose from {list(SECTIONS)}")
    for name in names or [n for n in SECTIONS if n not in OPTIONAL]:
        print(f"\n# {name}")
        module, _, function = SECTIONS[name].partition(":")
        getattr(importlib.import_module(module), function or "main")()


if __name__ == "__main__":
    main(sys.argv[1:])
