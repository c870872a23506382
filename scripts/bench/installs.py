"""Issue 24 figures: first-use install of a one-package plugin with and without the install cooldown and from a
hash-checked lock (uv cache warm, interleaved), the readiness fast path of a locked plugin vs a uv no-op, and the
cost of the install record each install writes (vs that first-use install)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.common import median_seconds, ms, table, write_plugin

REQUIREMENT = "text-unidecode==1.3\n"
ROOT = Path(__file__).resolve().parents[2]


def _first_use(root: Path, name: str, home: Path, cooldown: str | None) -> float:
    from pepperpy.plugin_manager import PluginManager

    saved = os.environ.get("PEPPERPY_INSTALL_COOLDOWN")
    if cooldown is None:
        os.environ.pop("PEPPERPY_INSTALL_COOLDOWN", None)
    else:
        os.environ["PEPPERPY_INSTALL_COOLDOWN"] = cooldown
    try:
        started = time.perf_counter()
        manager = PluginManager(search_paths=[root], home=home)
        manager.load_class("llm", name)
        elapsed = time.perf_counter() - started
    finally:
        if saved is None:
            os.environ.pop("PEPPERPY_INSTALL_COOLDOWN", None)
        else:
            os.environ["PEPPERPY_INSTALL_COOLDOWN"] = saved
    for entry in list(sys.path):
        if entry.startswith(str(home)):
            sys.path.remove(entry)
    return elapsed


def _lock(folder: Path, home: Path) -> None:
    env = {**os.environ, "PEPPERPY_HOME": str(home)}
    subprocess.run([sys.executable, "-m", "pepperpy", "plugins", "lock", str(folder)], check=True, env=env,
                   capture_output=True)


def first_use_installs(repeat: int = 7) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "plugins"
        write_plugin(root / "bench_plain", "bench_plain", REQUIREMENT)
        write_plugin(root / "bench_locked", "bench_locked", REQUIREMENT)
        _lock(root / "bench_locked", Path(tmp) / "lock-home")
        kinds = {"cooldown off (PEPPERPY_INSTALL_COOLDOWN=0)": ("bench_plain", "0"),
                 "cooldown 7 days (the default)": ("bench_plain", None),
                 "from requirements.lock, --require-hashes, cooldown 7 days": ("bench_locked", None)}
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for name, cooldown in kinds.values():  # warm the uv cache for each way
            _first_use(root, name, Path(tmp) / "warm" / name, cooldown)
        for round_ in range(repeat):  # interleaved: the machine's load shifts over the run
            for kind, (name, cooldown) in kinds.items():
                home = Path(tmp) / f"home-{round_}-{name}-{cooldown}"
                samples[kind].append(_first_use(root, name, home, cooldown))
                shutil.rmtree(home)
    base = statistics.median(samples[next(iter(kinds))])
    rows = [(kind, ms(statistics.median(s)), f"{statistics.median(s) / base:.2f}x",
             f"{ms(min(s))} - {ms(max(s))}") for kind, s in samples.items()]
    table(f"first use of a one-package plugin ({REQUIREMENT.strip()}), uv cache warm (median of {repeat}, interleaved)",
          rows, ("install", "median", "vs cooldown off", "range"))


def resolution_cost(repeat: int = 15) -> None:
    """The option alone: ``uv pip compile`` of the requirement (a resolution against the index, warm cache) with and
    without ``--exclude-newer "7 days"``, interleaved."""
    from uv import find_uv_bin

    with tempfile.TemporaryDirectory() as tmp:
        requirements = Path(tmp) / "requirements.txt"
        requirements.write_text(REQUIREMENT)
        base = [find_uv_bin(), "pip", "compile", "--quiet", "--no-config", "--no-header", str(requirements)]
        kinds = {"without": base, "with --exclude-newer '7 days'": [*base, "--exclude-newer", "7 days"]}
        samples: dict[str, list[float]] = {kind: [] for kind in kinds}
        for command in kinds.values():
            subprocess.run(command, check=True, capture_output=True)
        for _ in range(repeat):
            for kind, command in kinds.items():
                started = time.perf_counter()
                subprocess.run(command, check=True, capture_output=True)
                samples[kind].append(time.perf_counter() - started)
    base_s = statistics.median(samples["without"])
    table(f"uv resolution of {REQUIREMENT.strip()} (uv pip compile, warm cache, median of {repeat}, interleaved)",
          [(kind, ms(statistics.median(s)), f"{statistics.median(s) / base_s:.2f}x") for kind, s in samples.items()],
          ("cooldown option", "median", "ratio"))


def readiness(repeat: int = 300) -> None:
    """The fast path of a stamped env (new manager each time) for an unlocked plugin, a locked one and one with
    rag/chroma's 87-package lock (its env stamped by hand: readiness reads the stamp, not the packages)."""
    from uv import find_uv_bin

    from pepperpy import _install, _lockfile
    from pepperpy.plugin_manager import PluginManager

    with tempfile.TemporaryDirectory() as tmp:
        root, home = Path(tmp) / "plugins", Path(tmp) / "home"
        write_plugin(root / "bench_plain", "bench_plain", REQUIREMENT)
        write_plugin(root / "bench_locked", "bench_locked", REQUIREMENT)
        _lock(root / "bench_locked", home)
        chroma = ROOT / "plugins" / "rag_chroma"
        write_plugin(root / "bench_big", "bench_big", (chroma / "requirements.txt").read_text())
        shutil.copy(chroma / "requirements.lock", root / "bench_big" / "requirements.lock")
        manager = PluginManager(search_paths=[root], home=home)
        for name in ("bench_plain", "bench_locked"):
            manager.load_class("llm", name)
        big = manager.requirement_set(manager.discover()["llm/bench_big"])
        stamped = _install.env_dir(home, big)
        stamped.mkdir(parents=True)
        (stamped / ".pepperpy-stamp").write_text(big.fingerprint())
        rows = []
        for name in ("bench_plain", "bench_locked", "bench_big"):
            info = PluginManager(search_paths=[root], home=home).discover()[f"llm/{name}"]
            seconds = median_seconds(lambda: PluginManager(search_paths=[root], home=home).ensure_requirements(info),
                                     repeat)
            rows.append((name, seconds))
        info = PluginManager(search_paths=[root], home=home).discover()["llm/bench_big"]

        def first_in_process() -> None:
            _lockfile._content_hash.cache_clear()  # as in a new process: the lock is read and hashed once
            PluginManager(search_paths=[root], home=home).ensure_requirements(info)

        rows.append(("bench_big_cold", median_seconds(first_in_process, repeat)))
        env = _install.env_dir(home, manager.requirement_set(manager.discover()["llm/bench_plain"]))
        command = [find_uv_bin(), "pip", "install", "--quiet", "--python", sys.executable, "--no-config",
                   "--target", str(env), "-r", str(root / "bench_plain" / "requirements.txt")]
        noop_s = median_seconds(lambda: subprocess.run(command, check=True), 10)
        for entry in list(sys.path):
            if entry.startswith(str(home)):
                sys.path.remove(entry)
    labels = {"bench_plain": "no lock", "bench_locked": "1-package lock", "bench_big": "rag/chroma's lock (218 KB)",
              "bench_big_cold": "the same, first time in a process (lock read and hashed)"}
    table(f"fast-path readiness of an installed plugin (median of {repeat}, new manager each time)",
          [(labels[n], ms(s), f"1/{noop_s / s:.0f} of uv no-op") for n, s in rows]
          + [("no-op `uv pip install` of the same requirement", ms(noop_s), "1x")], ("plugin", "time", "ratio"))
    print("target: readiness <= 1/100 of the uv no-op")


def install_record(repeat: int = 15) -> None:
    """Writing ``.pepperpy-installed.json`` (scan the dist-info folders, atomic write with fsync) for the env of a
    one-package plugin and for a folder of 100 distributions, next to that plugin's first-use install."""
    from pepperpy import _install, _install_record
    from pepperpy.plugin_manager import PluginManager

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "plugins"
        write_plugin(root / "bench_plain", "bench_plain", REQUIREMENT)
        _first_use(root, "bench_plain", Path(tmp) / "warm", None)  # the uv cache warm
        installs = [_first_use(root, "bench_plain", Path(tmp) / f"home-{i}", None) for i in range(5)]
        home = Path(tmp) / "home-0"
        manager = PluginManager(search_paths=[root], home=home)
        needed = manager.requirement_set(manager.discover()["llm/bench_plain"])
        one = _install.env_dir(home, needed)
        many = Path(tmp) / "many"
        for i in range(100):
            info = many / f"package_{i}-1.{i}.dist-info"
            info.mkdir(parents=True)
            (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: package-{i}\nVersion: 1.{i}\n\n" + "x" * 4000)
            (info / "RECORD").write_text("".join(f"package_{i}/m{j}.py,sha256=abc,10\n" for j in range(40)))
        policy = {"cooldown": "7 days", "cooldown_source": "the default", "allow_newer": []}
        rows = []
        for label, env in (("1 distribution (text-unidecode)", one), ("100 distributions", many)):
            seconds = median_seconds(lambda env=env: _install_record.write(env, "llm/bench", {}, policy), repeat)
            rows.append((label, ms(seconds), f"{seconds / statistics.median(installs):.3f}x"))
    table(f"writing the install record (median of {repeat}) vs the first-use install of a one-package plugin "
          f"({ms(statistics.median(installs))}, uv cache warm, median of 5)", rows, ("env", "time", "vs install"))


def main() -> None:
    first_use_installs()
    resolution_cost()
    readiness()
    install_record()
