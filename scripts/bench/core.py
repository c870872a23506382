"""Issue 3 figures: import cost, discovery of 1,000 plugins, fast-path readiness vs uv no-op, first install."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.common import median_seconds, ms, python_seconds, table, write_plugin

TEST_REQUIREMENT = "text-unidecode==1.3\n"


def import_cost(repeat: int = 15) -> None:
    statements = ["import httpx", "import pepperpy", "from pepperpy import PepperPy", "import pydantic"]
    with tempfile.TemporaryDirectory() as pycache:
        # Byte-code cached as in an ordinary install, whatever PYTHONDONTWRITEBYTECODE says:
        # without it every run would compile every module, and that is not what users pay.
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env["PYTHONPYCACHEPREFIX"] = pycache
        for code in statements:
            python_seconds(code, 1, env)  # fills the byte-code cache
        baseline = python_seconds("pass", repeat, env)
        costs = {code: python_seconds(code, repeat, env) - baseline for code in statements}
    httpx_cost = costs["import httpx"]
    rows = [(label, ms(cost), f"{cost / httpx_cost:.2f}x") for label, cost in costs.items()]
    table(f"import cost (median of {repeat}, minus `python -c pass` = {ms(baseline)})", rows, ("what", "cost", "vs httpx"))
    print("target: import pepperpy <= 1.5x httpx")


def discovery(count: int = 1000, repeat: int = 7) -> None:
    from pepperpy.plugin_manager import PluginManager

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "plugins"
        for index in range(count):
            write_plugin(root / f"p{index:04d}", f"p{index:04d}")
        PluginManager(search_paths=[root], home=Path(tmp) / "home").discover()  # warm imports and the page cache

        def cold() -> None:
            found = PluginManager(search_paths=[root], home=Path(tmp) / "home").discover()
            assert len(found) == count

        warm_manager = PluginManager(search_paths=[root], home=Path(tmp) / "home")
        warm_manager.discover()
        cold_s = median_seconds(cold, repeat)
        cached_s = median_seconds(warm_manager.discover, repeat)
    rows = [("cold (new manager)", ms(cold_s), f"{cold_s / count * 1e6:.1f} us"), ("cached", ms(cached_s), f"{cached_s / count * 1e6:.1f} us")]
    table(f"discovery of {count} plugin folders (median of {repeat})", rows, ("run", "total", "per plugin"))
    print("target: cold < 50 ms")


def readiness_and_install() -> None:
    from uv import find_uv_bin

    from pepperpy.plugin_manager import PluginManager

    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "plugins", Path(tmp) / "home"
        write_plugin(root / "bench_unidecode", "bench_unidecode", TEST_REQUIREMENT)
        started = time.perf_counter()
        PluginManager(search_paths=[root], home=home).load_class("llm", "bench_unidecode")
        first_install_s = time.perf_counter() - started
        cold_cache_s = _install_with_empty_uv_cache(root, Path(tmp))

        info = PluginManager(search_paths=[root], home=home).discover()["llm/bench_unidecode"]

        def fast_path() -> None:
            PluginManager(search_paths=[root], home=home).ensure_requirements(info)

        fast_s = median_seconds(fast_path, 200)
        (env_dir,) = [p for p in (home / "envs").iterdir() if p.is_dir()]
        command = [find_uv_bin(), "pip", "install", "--quiet", "--python", sys.executable, "--no-config",
                   "--target", str(env_dir), "-r", str(root / "bench_unidecode" / "requirements.txt")]
        noop_s = median_seconds(lambda: subprocess.run(command, check=True), 10)
    rows = [
        ("fast-path readiness check (new manager, stamped env)", ms(fast_s), f"1/{noop_s / fast_s:.0f} of uv no-op"),
        ("no-op `uv pip install` of the same requirements", ms(noop_s), "1x"),
        ("first install of the test plugin (uv cache warm)", ms(first_install_s), ""),
        ("first install of the test plugin (empty uv cache)", ms(cold_cache_s), ""),
    ]
    table("on-demand install (text-unidecode==1.3)", rows, ("what", "time", "ratio"))
    print("target: readiness <= 1/100 of the uv no-op")


def _install_with_empty_uv_cache(root: Path, tmp: Path) -> float:
    code = (
        "from pepperpy.plugin_manager import PluginManager; import sys; "
        "PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2]).load_class('llm', 'bench_unidecode')"
    )
    env = {**os.environ, "UV_CACHE_DIR": str(tmp / "uv-cache")}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code, str(root), str(tmp / "cold-home")], check=True, env=env)
    return time.perf_counter() - started


def main() -> None:
    import_cost()
    discovery()
    readiness_and_install()
