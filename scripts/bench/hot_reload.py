"""Hot reload: the time from saving a plugin file to the new code answering through an open PepperPy.

Baseline, measured in the same run: the time from a save to watchfiles reporting it, with the same
step and debounce as the reloader (pepperpy/_reload.py). The difference is PepperPy's own cost: the
re-import of the plugin folder, the class checks, and the switch of the open facade at its next call.

Also: a save made at once after a plugin's first load, with the watcher already running. Its folder
joins the watch set at the next check of that set (every ``ROOTS_CHECK_MS``), where it is compared
with the files it had at import; so this latency is up to that period, not the watchfiles figure.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from scripts.bench.common import ms, percentile, table

EDITS = 10
FIRST_SAVES = 5
TARGET_S = 0.300
SOURCE = '''
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugins import hot_reloadable_plugin


@hot_reloadable_plugin
class VersionProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content="VERSION")
'''


def _watchfiles_latency(root: Path) -> list[float]:
    import watchfiles

    from pepperpy._reload import DEBOUNCE_MS, STEP_MS

    target = root / "raw.py"
    target.write_text("0")
    seen: list[float] = []
    ready, stop = threading.Event(), threading.Event()

    def watch() -> None:
        for changes in watchfiles.watch(root, debounce=DEBOUNCE_MS, step=STEP_MS, rust_timeout=200,
                                        yield_on_timeout=True, stop_event=stop):
            ready.set()
            if changes:
                seen.append(time.perf_counter())

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    ready.wait(5)
    samples = []
    for edit in range(EDITS):
        before = len(seen)
        saved = time.perf_counter()
        target.write_text(str(edit + 1))
        deadline = saved + 5
        while len(seen) == before and time.perf_counter() < deadline:
            time.sleep(0.002)
        if len(seen) > before:
            samples.append(seen[before] - saved)
        time.sleep(0.1)  # let each save be its own batch
    stop.set()
    thread.join(5)
    return samples


def _version_plugin(root: Path) -> tuple[Path, Any]:
    """A plugin folder ``llm/version`` answering "v0", and a manager that sees only it."""
    from pepperpy.plugin_manager import PluginManager

    folder = root / "plugins" / "version"
    folder.mkdir(parents=True)
    (folder / "plugin.json").write_text(json.dumps({
        "name": "version", "version": "0.1.0", "category": "llm", "provider_name": "version",
        "description": "answers with its code's version", "entry_point": "provider:VersionProvider",
        "author": "bench", "pepperpy_compatibility": ">=0.1.0",
    }))
    (folder / "provider.py").write_text(SOURCE.replace("VERSION", "v0"))
    return folder, PluginManager(search_paths=[root / "plugins"], home=root / "home")


async def _until_served(pepper: Any, expected: str, saved: float, what: str) -> float:
    while (await pepper.chat.with_user("hi").generate()).content != expected:
        if time.perf_counter() - saved > 10:
            raise RuntimeError(f"{what} was not picked up within 10 s")
        await asyncio.sleep(0.002)
    return time.perf_counter() - saved


async def _reload_latency(root: Path) -> list[float]:
    from pepperpy import PepperPy
    from pepperpy.plugins import start_hot_reload, stop_hot_reload

    folder, manager = _version_plugin(root)
    samples = []
    async with PepperPy(plugin_manager=manager).with_llm("version") as pepper:
        reloader = start_hot_reload(manager)
        while str(folder.resolve()) not in reloader.watching:
            await asyncio.sleep(0.01)
        for edit in range(1, EDITS + 1):
            expected = f"v{edit}"
            saved = time.perf_counter()
            (folder / "provider.py").write_text(SOURCE.replace("VERSION", expected))
            samples.append(await _until_served(pepper, expected, saved, f"edit {edit}"))
            await asyncio.sleep(0.1)
        stop_hot_reload()
    return samples


async def _first_save_latency(root: Path) -> list[float]:
    from pepperpy import PepperPy
    from pepperpy.plugins import start_hot_reload, stop_hot_reload

    samples = []
    for trial in range(FIRST_SAVES):
        folder, manager = _version_plugin(root / str(trial))
        start_hot_reload(manager)
        try:
            async with PepperPy(plugin_manager=manager).with_llm("version") as pepper:
                await pepper.chat.with_user("hi").generate()  # the first load
                saved = time.perf_counter()
                (folder / "provider.py").write_text(SOURCE.replace("VERSION", "v1"))
                samples.append(await _until_served(pepper, "v1", saved, f"the save right after load {trial}"))
        finally:
            stop_hot_reload()
    return samples


def main() -> None:
    with tempfile.TemporaryDirectory() as raw, tempfile.TemporaryDirectory() as plugin:
        baseline = _watchfiles_latency(Path(raw))
        reload = asyncio.run(_reload_latency(Path(plugin) / "edits"))
        first = asyncio.run(_first_save_latency(Path(plugin) / "first"))
    rows = [
        ("watchfiles sees the save (baseline)", ms(statistics.median(baseline)), ms(percentile(baseline, 0.9)),
         str(len(baseline))),
        ("save -> new code serving via PepperPy", ms(statistics.median(reload)), ms(percentile(reload, 0.9)),
         str(len(reload))),
        ("save at once after the first load -> serving", ms(statistics.median(first)), ms(percentile(first, 0.9)),
         str(len(first))),
    ]
    table(f"Hot reload latency over {EDITS} edits (target p50 < {ms(TARGET_S)})", rows,
          ("what", "p50", "p90", "edits"))
    verdict = "meets" if statistics.median(reload) < TARGET_S else "MISSES"
    print(f"p50 save-to-serving {ms(statistics.median(reload))}: {verdict} the {ms(TARGET_S)} target")


if __name__ == "__main__":
    main()
